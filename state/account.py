"""Accounts: balances per asset, funds locked by resting spot orders, perp positions.

Perp positions use average-entry accounting: ``entry_notional`` is the quote value paid
for the open size; reducing realizes PnL into the quote balance. The part of the entry
notional that a reduction closes is rounded against the account (a long's cost basis up,
a short's down), and because the realized PnL is computed from that very same number, the
identity ``sum(quote balances) - sum(signed entry notionals)`` is exactly conserved by
every trade: no dust is created or destroyed.
"""

from __future__ import annotations


class Position:
    __slots__ = ("entry_notional", "realized_pnl", "size")

    def __init__(self, size: int = 0, entry_notional: int = 0, realized_pnl: int = 0) -> None:
        self.size = size  # signed lots: > 0 long, < 0 short
        self.entry_notional = entry_notional  # quote units, >= 0
        self.realized_pnl = realized_pnl  # cumulative, informational

    def signed_entry(self) -> int:
        return self.entry_notional if self.size >= 0 else -self.entry_notional

    def unrealized_pnl(self, price: int, tick_value: int) -> int:
        return self.size * price * tick_value - self.signed_entry()

    def apply_fill(self, delta: int, price: int, tick_value: int) -> int:
        """Trade ``delta`` lots (signed) at ``price``; returns the PnL realized by it."""
        size = self.size
        if size == 0 or (size > 0) == (delta > 0):
            self.size = size + delta
            self.entry_notional += abs(delta) * price * tick_value
            return 0
        closed = min(abs(delta), abs(size))
        if size > 0:  # closing a long: cost basis rounds up, so the credit rounds down
            basis = -(-self.entry_notional * closed // size)
            pnl = closed * price * tick_value - basis
        else:  # closing a short: proceeds basis rounds down
            basis = self.entry_notional * closed // -size
            pnl = basis - closed * price * tick_value
        self.entry_notional -= basis
        self.size = size + (closed if size < 0 else -closed)
        opened = abs(delta) - closed
        if opened:
            self.size = opened if delta > 0 else -opened
            self.entry_notional = opened * price * tick_value
        self.realized_pnl += pnl
        return pnl

    def record(self) -> list[int]:
        return [self.size, self.entry_notional, self.realized_pnl]


class Account:
    __slots__ = ("address", "balances", "cloids", "locked", "open_orders", "order_margin", "positions")

    def __init__(self, address: bytes) -> None:
        self.address = address
        self.balances: dict[int, int] = {}  # asset -> free amount
        self.locked: dict[int, int] = {}  # asset -> amount held by resting spot orders
        self.positions: dict[int, Position] = {}  # perp market -> position
        self.open_orders: dict[int, int] = {}  # oid -> market (derived from the books)
        self.cloids: dict[bytes, int] = {}  # cloid -> oid of an open order (derived)
        self.order_margin = 0  # sum of margin reserved by open perp orders (derived)

    def balance(self, asset: int) -> int:
        return self.balances.get(asset, 0)

    def credit(self, asset: int, amount: int) -> None:
        self.balances[asset] = self.balances.get(asset, 0) + amount

    def lock(self, asset: int, amount: int) -> None:
        self.balances[asset] = self.balances.get(asset, 0) - amount
        self.locked[asset] = self.locked.get(asset, 0) + amount

    def unlock(self, asset: int, amount: int) -> None:
        self.locked[asset] -= amount
        self.balances[asset] = self.balances.get(asset, 0) + amount

    def spend_locked(self, asset: int, amount: int) -> None:
        self.locked[asset] -= amount

    def position(self, market: int) -> Position:
        pos = self.positions.get(market)
        if pos is None:
            pos = self.positions[market] = Position()
        return pos

    def is_empty(self) -> bool:
        return (
            not any(self.balances.values())
            and not any(self.locked.values())
            and not any(p.size or p.entry_notional or p.realized_pnl for p in self.positions.values())
            and not self.open_orders
        )

    def record(self) -> list[object]:
        """Persisted form. Open orders, cloids and order margin are rebuilt from the books."""
        return [
            [[a, v] for a, v in sorted(self.balances.items()) if v],
            [[a, v] for a, v in sorted(self.locked.items()) if v],
            [[m, *p.record()] for m, p in sorted(self.positions.items()) if p.size or p.entry_notional or p.realized_pnl],
        ]

    @classmethod
    def from_record(cls, address: bytes, r: list[list[list[int]]]) -> Account:
        acct = cls(address)
        acct.balances = {a: v for a, v in r[0]}
        acct.locked = {a: v for a, v in r[1]}
        acct.positions = {m: Position(s, e, p) for m, s, e, p in r[2]}
        return acct
