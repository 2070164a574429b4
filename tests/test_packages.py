"""The packages form layers, each importing only the ones below it, and ``state/`` has no
import cycle inside it.

    state  <  consensus  <  node  <  devnet  <  cli

``state`` is the deterministic exchange and imports nothing of the project above it;
``consensus`` needs only ``state``'s codec and keys; ``node`` runs both (its ``wallet``
subpackage is the client side the CLI and the devnet share); ``devnet`` drives nodes; the
``cli`` sits on top. Inside ``state/`` a cycle would hide a module's real dependencies
and make its behaviour depend on which module was imported first; the views that need the
whole exchange (``state/views.py``) sit on top instead of being imported lazily from below.
Imports under ``if TYPE_CHECKING:`` do not count (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["state", "consensus", "node", "devnet", "cli"]


def runtime_imports(path: Path) -> set[str]:
    """Absolute module names ``path`` imports outside ``if TYPE_CHECKING:`` blocks (for
    ``from pkg import name``, also ``pkg.name``: it may be a module)."""
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
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_each_package_imports_only_the_layers_below_it() -> None:
    bad = []
    for rank, pkg in enumerate(ORDER):
        above = set(ORDER[rank + 1:])
        for path in sorted((ROOT / pkg).rglob("*.py")):
            wrong = {m.split(".")[0] for m in runtime_imports(path)} & above
            if wrong:
                bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert bad == []


def test_state_has_no_import_cycle() -> None:
    state = ROOT / "state"
    modules = {p.stem for p in state.glob("*.py")}
    graph = {p.stem: {m.split(".")[1] for m in runtime_imports(p) if m.startswith("state.")} & modules - {p.stem}
             for p in sorted(state.glob("*.py"))}
    done: set[str] = set()
    stack: list[str] = []

    def visit(m: str) -> None:
        if m in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(m):], m]))
        if m in done:
            return
        stack.append(m)
        for dep in sorted(graph[m]):
            visit(dep)
        stack.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)
