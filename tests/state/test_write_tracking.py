"""Write tracking by construction: only the tracked mutators change an account's record.

An account record (balances, settings, positions) reaches the block's write set because
the code that changes it is the code that marks it in the exchange's ``WriteTracker``
(state/tracker.py): ``Pools`` (state/lending.py) marks every balance change, ``Account``'s setters mark settings, and the position functions of
state/funding.py mark positions. This test reads the source of ``state/`` and fails if
any other module assigns those fields directly, which is how a liquidation once changed
an account in memory without writing it (tests/state/test_committed_liquidation.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

STATE = Path(__file__).resolve().parents[2] / "state"

BALANCE_FIELDS = {"scaled", "idle", "lend_off", "unwind", "positions", "dead_man"}
POSITION_FIELDS = {"entry_notional", "realized_pnl", "epoch"}
MUTATING_METHODS = {"add", "discard", "pop", "clear", "update", "setdefault", "remove", "popitem"}
# module -> the fields it may assign: the tracked mutators' own modules
ALLOWED = {
    "lending.py": BALANCE_FIELDS,
    "account.py": BALANCE_FIELDS | POSITION_FIELDS | {"size", "funding_index"},
    "funding.py": POSITION_FIELDS | {"size", "funding_index"},
}


def _field(node: ast.AST) -> str | None:
    """The attribute a target writes through: ``x.f``, ``x.f[k]``."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.attr if isinstance(node, ast.Attribute) else None


def _violations(path: Path) -> list[str]:
    allowed = ALLOWED.get(path.name, set())
    watched = BALANCE_FIELDS | POSITION_FIELDS
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in MUTATING_METHODS):
            f = _field(node.func.value)
            if f in watched and f not in allowed:
                out.append(f"{path.name}:{node.lineno} calls .{node.func.attr} on .{f}")
            continue
        for t in targets:
            elts = t.elts if isinstance(t, ast.Tuple) else [t]
            for e in elts:
                f = _field(e)
                is_self = isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self"
                if f in watched and f not in allowed and not is_self:
                    out.append(f"{path.name}:{node.lineno} assigns .{f}")
    return out


def test_only_tracked_mutators_assign_account_records() -> None:
    found = [v for p in sorted(STATE.glob("*.py")) for v in _violations(p)]
    assert found == [], "change accounts through Pools / Account / state.funding, which mark the write set"


def test_position_mutators_in_funding_mark_the_account() -> None:
    """Each function of state/funding.py that changes a position marks its account."""
    tree = ast.parse((STATE / "funding.py").read_text())
    for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
        writes = any(_field(t) in POSITION_FIELDS | {"size"}
                     for n in ast.walk(fn) if isinstance(n, ast.Assign | ast.AugAssign)
                     for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))
        calls = {n.func.attr for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        if writes or "apply_trade" in calls:
            assert "touch" in calls, f"funding.{fn.name} changes a position without ex.touch"


def test_the_checker_sees_a_direct_write(tmp_path: Path) -> None:
    bad = tmp_path / "rogue.py"
    bad.write_text("def f(acct):\n    acct.scaled[1] = 5\n    acct.lend_off.add(2)\n    pos.entry_notional += 1\n")
    assert len(_violations(bad)) == 3
