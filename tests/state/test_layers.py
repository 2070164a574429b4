"""``state/`` has no import cycle: its modules form layers.

Only imports that run count: those under ``if TYPE_CHECKING:`` are for annotations and
never execute. A cycle hides a module's real dependencies and makes a module's behaviour
depend on which one was imported first; the views that need the whole exchange
(``state/views.py``) sit on top instead of being imported lazily from below.
"""

from __future__ import annotations

import ast
from pathlib import Path

STATE = Path(__file__).resolve().parents[2] / "state"


def _runtime_imports(path: Path) -> set[str]:
    """Modules of ``state`` imported by ``path`` outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "state":
                out.update(a.name for a in node.names)
            elif node.module.startswith("state."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("state."))
    return out - {path.stem}


def test_state_has_no_import_cycle() -> None:
    graph = {p.stem: _runtime_imports(p) for p in sorted(STATE.glob("*.py"))}
    done: set[str] = set()
    stack: list[str] = []

    def visit(m: str) -> None:
        if m in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(m):], m]))
        if m in done or m not in graph:
            return
        stack.append(m)
        for dep in sorted(graph[m]):
            visit(dep)
        stack.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)
