"""What applying a transaction produced: receipts for the sender, events for subscribers.

Receipts and events are plain frozen records with a canonical array form, so a block's
results can be stored, served over RPC and hashed identically on every node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from state.errors import Code


@dataclass(frozen=True, slots=True)
class Fill:
    market: int
    price: int
    size: int
    taker_is_buy: bool
    maker: bytes
    taker: bytes
    maker_oid: int
    taker_oid: int
    maker_fee: int
    taker_fee: int

    def to_list(self) -> list[Any]:
        return [self.market, self.price, self.size, self.taker_is_buy, self.maker, self.taker,
                self.maker_oid, self.taker_oid, self.maker_fee, self.taker_fee]


@dataclass(frozen=True, slots=True)
class Cancelled:
    """An order left the book without filling: by its owner, by STP, IOC remainder, or risk."""

    market: int
    oid: int
    owner: bytes
    remaining: int
    reason: str

    def to_list(self) -> list[Any]:
        return [self.market, self.oid, self.owner, self.remaining, self.reason]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of one action (one per batch item)."""

    code: Code
    message: str = ""
    oid: int | None = None
    status: str = ""  # resting | filled | cancelled | ok | rejected
    filled: int = 0
    resting: int = 0
    fills: tuple[Fill, ...] = ()

    def to_list(self) -> list[Any]:
        return [int(self.code), self.message, self.oid, self.status, self.filled, self.resting,
                [f.to_list() for f in self.fills]]


def rejected(code: Code, message: str) -> ActionResult:
    return ActionResult(code=code, message=message, status="rejected")


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    code: Code
    message: str = ""
    signer: bytes = b""
    kind: str = ""
    results: tuple[ActionResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.code == Code.OK

    def to_list(self) -> list[Any]:
        return [self.tx_hash, int(self.code), self.message, self.signer, self.kind,
                [r.to_list() for r in self.results]]
