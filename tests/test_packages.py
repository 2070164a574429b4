"""The packages form layers: each imports only the ones below it.

    state  <  consensus  <  node  <  devnet  <  cli

``state`` is the deterministic exchange and imports nothing of the project above it;
``consensus`` needs only ``state``'s codec and keys; ``node`` runs both (its ``wallet``
subpackage is the client side the CLI and the devnet share); ``devnet`` drives nodes; the
``cli`` sits on top. Imports under ``if TYPE_CHECKING:`` do not count (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["state", "consensus", "node", "devnet", "cli"]


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
    return out & set(ORDER)


def test_each_package_imports_only_the_layers_below_it() -> None:
    bad = []
    for rank, pkg in enumerate(ORDER):
        above = set(ORDER[rank + 1:])
        for path in sorted((ROOT / pkg).rglob("*.py")):
            wrong = _imported_packages(path) & above
            if wrong:
                bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert bad == []
