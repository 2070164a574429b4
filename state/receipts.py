"""What applying a transaction produced: receipts for the sender, events for subscribers.

Receipts and events have a canonical array form (``to_list``), so a block's results can be
stored, served over RPC and hashed identically on every node.

They are immutable records, but deliberately not ``@dataclass(frozen=True)``: one to three
of them are built for every transaction on the hottest path there is, and a frozen
dataclass's generated ``__init__`` sets each field through ``object.__setattr__`` and runs
interpreted even in the compiled build (~1.1 µs for a 10-field record, 13% of a compiled
``apply_block``). A slotted class with a plain ``__init__`` takes 27 ns compiled and
~170 ns interpreted. Immutability is the type checker's: every field is ``Final``, and
mypy in strict mode on ``state/`` is part of the test suite.
"""

from __future__ import annotations

from typing import Any, Final

from state.errors import Code

# Code.OK as a module constant: the compiled build reads it from a C static, where
# ``Code.OK`` is a module-dict look-up of the enum class and an attribute look-up on it.
OK: Final = Code.OK


def _record_repr(name: str, values: list[Any]) -> str:
    """``Name(v1, v2, ...)`` in canonical field order, for tests and logs."""
    return f"{name}{tuple(values)!r}"


class Fill:
    """One match: the maker's resting order traded ``size`` lots at ``price`` ticks."""

    __slots__ = ("maker", "maker_fee", "maker_oid", "market", "price", "size", "taker", "taker_fee",
                 "taker_is_buy", "taker_oid")

    def __init__(self, market: int, price: int, size: int, taker_is_buy: bool, maker: bytes, taker: bytes,
                 maker_oid: int, taker_oid: int, maker_fee: int, taker_fee: int) -> None:
        self.market: Final = market
        self.price: Final = price
        self.size: Final = size
        self.taker_is_buy: Final = taker_is_buy
        self.maker: Final = maker
        self.taker: Final = taker
        self.maker_oid: Final = maker_oid
        self.taker_oid: Final = taker_oid
        self.maker_fee: Final = maker_fee
        self.taker_fee: Final = taker_fee

    def to_list(self) -> list[Any]:
        return [self.market, self.price, self.size, self.taker_is_buy, self.maker, self.taker,
                self.maker_oid, self.taker_oid, self.maker_fee, self.taker_fee]

    def __repr__(self) -> str:
        return _record_repr("Fill", self.to_list())


class Cancelled:
    """An order left the book without filling: by its owner, by STP, IOC remainder, or risk."""

    __slots__ = ("market", "oid", "owner", "reason", "remaining")

    def __init__(self, market: int, oid: int, owner: bytes, remaining: int, reason: str) -> None:
        self.market: Final = market
        self.oid: Final = oid
        self.owner: Final = owner
        self.remaining: Final = remaining
        self.reason: Final = reason

    def to_list(self) -> list[Any]:
        return [self.market, self.oid, self.owner, self.remaining, self.reason]

    def __repr__(self) -> str:
        return _record_repr("Cancelled", self.to_list())


class ActionResult:
    """The outcome of one action (one per batch item). For an order: ``filled`` lots traded
    now, ``resting`` lots left on the book, ``cancelled`` lots of the remainder cancelled at
    once (an IOC's, or a reduce-only order's once the position is flat), ``clipped`` lots cut
    off at placement because a reduce-only order was larger than the position. So
    ``filled + resting + cancelled + clipped`` is the size the order asked for."""

    __slots__ = ("cancelled", "clipped", "code", "filled", "fills", "message", "oid", "resting", "status")

    def __init__(self, code: Code, message: str = "", oid: int | None = None,
                 status: str = "",  # resting | filled | cancelled | ok | rejected | waiting
                 filled: int = 0, resting: int = 0, fills: tuple[Fill, ...] = (),
                 cancelled: int = 0, clipped: int = 0) -> None:
        self.code: Final = code
        self.message: Final = message
        self.oid: Final = oid
        self.status: Final = status
        self.filled: Final = filled
        self.resting: Final = resting
        self.fills: Final = fills
        self.cancelled: Final = cancelled
        self.clipped: Final = clipped

    def to_list(self) -> list[Any]:
        return [int(self.code), self.message, self.oid, self.status, self.filled, self.resting,
                [f.to_list() for f in self.fills], self.cancelled, self.clipped]

    def __repr__(self) -> str:
        return _record_repr("ActionResult", self.to_list())


def rejected(code: Code, message: str) -> ActionResult:
    return ActionResult(code=code, message=message, status="rejected")


class Receipt:
    """What one transaction did: its code (the first failing action's, or OK) and the
    result of each action."""

    __slots__ = ("code", "kind", "message", "results", "signer", "tx_hash")

    def __init__(self, tx_hash: bytes, code: Code, message: str = "", signer: bytes = b"", kind: str = "",
                 results: tuple[ActionResult, ...] = ()) -> None:
        self.tx_hash: Final = tx_hash
        self.code: Final = code
        self.message: Final = message
        self.signer: Final = signer
        self.kind: Final = kind
        self.results: Final = results

    @property
    def ok(self) -> bool:
        return self.code == Code.OK

    def to_list(self) -> list[Any]:
        return [self.tx_hash, int(self.code), self.message, self.signer, self.kind,
                [r.to_list() for r in self.results]]

    def __repr__(self) -> str:
        return _record_repr("Receipt", self.to_list())

