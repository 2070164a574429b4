"""The events a block emits besides fills and cancels (state/receipts.py), one class each.

Each is a named tuple whose first field, ``kind``, names it (and liquidation events carry
their ``stage`` third): immutable, without a ``__dict__``, typed, and stored in block
results as the plain list of its fields, so a stored event reads back the same whatever
version wrote it. ``SCHEMA`` maps each kind (and liquidation stage) to its field names; the
node renders events to JSON with it, and ``node/API.md`` lists it.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple


class Deposited(NamedTuple):
    kind: str  # "deposit"
    account: bytes
    asset: int
    amount: int


class Withdrawn(NamedTuple):
    kind: str  # "withdraw"
    account: bytes
    asset: int
    amount: int
    destination: bytes


class Transferred(NamedTuple):
    """``account`` sent ``amount`` of ``asset`` to ``counterparty``."""

    kind: str  # "transfer"
    account: bytes
    counterparty: bytes
    asset: int
    amount: int


class Borrowed(NamedTuple):
    kind: str  # "borrow"
    account: bytes
    asset: int
    amount: int


class Repaid(NamedTuple):
    kind: str  # "repay"
    account: bytes
    asset: int
    amount: int


class FundingSettled(NamedTuple):
    """A funding interval closed: ``rate_ppb`` per interval, ``per_lot`` quote units each
    long lot pays (a short receives), the market's cumulative ``funding_index`` after it."""

    kind: str  # "funding"
    market: int
    rate_ppb: int
    per_lot: int
    funding_index: int


class FundingPaid(NamedTuple):
    """At a funding boundary, one position settled into USDC: ``funding`` paid (negative:
    received) and ``pnl`` realized by marking it to the boundary's mark."""

    kind: str  # "funding_payment"
    account: bytes
    market: int
    funding: int
    pnl: int


class LiquidationStarted(NamedTuple):
    kind: str  # "liquidation"
    account: bytes
    stage: str  # "start"
    equity: int
    requirement: int


class LiquidationTrade(NamedTuple):
    """An IOC the liquidation sent to the book: ``stage`` is "book" (a partial unwind),
    "backstop_book" (a backstopped account's legs) or "fund_unwind" (the insurance fund)."""

    kind: str  # "liquidation"
    account: bytes
    stage: str
    market: int
    is_buy: bool
    lots: int  # filled
    limit: int  # ticks


class Backstopped(NamedTuple):
    """The insurance fund took what was left of the account; ``remainder`` is the equity it
    took with it (negative: the fund absorbed a deficit)."""

    kind: str  # "liquidation"
    account: bytes
    stage: str  # "backstop"
    remainder: int


class FundDeleveraged(NamedTuple):
    kind: str  # "liquidation"
    account: bytes  # the insurance fund
    stage: str  # "fund_adl"
    equity: int


class Deleveraged(NamedTuple):
    """Auto-deleveraging: ``account`` closed ``lots`` of ``market`` against ``counterparty``
    for ``notional`` quote units."""

    kind: str  # "adl"
    market: int
    account: bytes
    counterparty: bytes
    lots: int
    notional: int


class Socialized(NamedTuple):
    """The last resort: ``amount`` of ``asset`` written off against its suppliers, pro rata
    to what they supplied (``supply_before`` in total)."""

    kind: str  # "socialized"
    asset: int
    amount: int
    supply_before: int


class FutureSettled(NamedTuple):
    """A dated future reached its expiry: every position closed at ``price`` (price units, a
    whole number of ticks); ``positions`` were settled, ``open_interest`` lots long (= short)."""

    kind: str  # "settlement"
    market: int
    price: int
    positions: int
    open_interest: int


class PositionSettled(NamedTuple):
    """One position of an expired future closed at the settlement price: ``size`` lots
    (signed, before), ``pnl`` quote units credited (value at settlement - signed entry)."""

    kind: str  # "position_settled"
    market: int
    account: bytes
    size: int
    pnl: int


class DeadManFired(NamedTuple):
    """An account's dead-man switch reached its deadline and has run: ``cancelled`` open and
    trigger orders were cancelled in the block it completed (a switch the per-block sweep
    budget splits over blocks, or whose orders a taker met first, has cancelled the others
    earlier, each with a ``Cancelled`` event of reason "dead_man"; state/lifetimes.py)."""

    kind: str  # "dead_man"
    account: bytes
    deadline_ms: int
    cancelled: int


class Triggered(NamedTuple):
    """A trigger order's reference price crossed its trigger: it enters matching now with
    the same oid (its fills and cancels follow). Prices: reference in price units, trigger
    in ticks."""

    kind: str  # "triggered"
    market: int
    oid: int
    owner: bytes
    reference_price: int
    trigger_price: int


SCHEMA: Final[dict[str, tuple[str, ...]]] = {
    "deposit": Deposited._fields,
    "withdraw": Withdrawn._fields,
    "transfer": Transferred._fields,
    "borrow": Borrowed._fields,
    "repay": Repaid._fields,
    "funding": FundingSettled._fields,
    "funding_payment": FundingPaid._fields,
    "adl": Deleveraged._fields,
    "socialized": Socialized._fields,
    "settlement": FutureSettled._fields,
    "position_settled": PositionSettled._fields,
    "triggered": Triggered._fields,
    "liquidation:start": LiquidationStarted._fields,
    "liquidation:book": LiquidationTrade._fields,
    "liquidation:backstop_book": LiquidationTrade._fields,
    "liquidation:fund_unwind": LiquidationTrade._fields,
    "liquidation:backstop": Backstopped._fields,
    "liquidation:fund_adl": FundDeleveraged._fields,
    "dead_man": DeadManFired._fields,
}


def fields_of(event: list[Any] | tuple[Any, ...]) -> tuple[str, ...] | None:
    """The field names of a stored event (its list form), or None for an unknown kind."""
    kind = event[0]
    if kind == "liquidation" and len(event) > 2:
        return SCHEMA.get(f"liquidation:{event[2]}")
    return SCHEMA.get(kind)
