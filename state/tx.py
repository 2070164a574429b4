"""Transactions: actions, the signed envelope, and their one canonical encoding.

Wire form of a signed transaction (a msgpack array of four, or of five)::

    [signer_pubkey: bin32, nonce: uint, action: [tag, field...], signature: bin64]
    [signer_pubkey: bin32, nonce: uint, action: [tag, field...], expires_after: uint, signature: bin64]

The five-element form carries ``expires_after`` (ms, Hyperliquid's expiresAfter): a block
whose time is past it rejects the transaction with ``TX_EXPIRED`` and consumes nothing.
The four-element form means "no expiry"; a None in the fifth place is malformed, so a
transaction has one encoding.

The signature covers ``DOMAIN_TX || chain_id || 0x00 || <the encodings of every element
but the signature>``. The five-element payload can never equal a four-element one: msgpack
values are self-delimiting, so the bytes of (pubkey, nonce, action) end exactly where the
action's encoding ends, and a payload with an extra trailing uint is a longer, different
byte string (a signature for one form never verifies the other). Because decoding enforces the canonical encoding, those bytes are exactly
``raw[1:-66]`` (strip the one-byte array header and the 66-byte encoded signature), so a
node never re-encodes a transaction to check it. The transaction hash is sha256(raw).

Actions are positional arrays with a leading tag; a wrong arity is an unknown field, a
wrong type is malformed, and an unknown tag is ``UNKNOWN_TX_TYPE``. Tags 10+ are the
lending, oracle and risk actions (lend, borrow, repay, oracle, set_unwind_order); 15, 17 and
18 the trigger orders (trigger, group, modify_trigger: state/triggers.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Final

from state import hltx
from state.codec import decode, encode, must_bool, must_bytes, must_int, must_list, must_uint
from state.errors import Code, TxError
from state.keys import (
    DOMAIN_TX,
    PUBKEY_LEN,
    SIG_LEN,
    PrivateKey,
    SigItem,
    address_of,
    signing_message,
    verify,
)
from state.units import MAX_AMOUNT, MAX_TIME_MS

MAX_TX_BYTES: Final = 16 * 1024
CLOID_LEN: Final = 16
MAX_WITHDRAW_DEST: Final = 64


class Tif(IntEnum):
    GTC = 0  # good till cancelled: match, then rest
    IOC = 1  # immediate or cancel: match, cancel the remainder
    ALO = 2  # add liquidity only (post-only): rejected if it would cross


_TIF_BY_CODE = tuple(Tif)  # Tif(n) through the enum machinery costs ~1 µs per decoded order


def _opt_cloid(v: Any) -> bytes | None:
    return None if v is None else must_bytes(v, "cloid", CLOID_LEN)


def _opt_uint(v: Any, name: str) -> int | None:
    return None if v is None else must_uint(v, name)


def _to_asset_amount(f: list[Any]) -> tuple[bytes, int, int]:
    """The fields of a deposit and of a transfer: (to address, asset, amount)."""
    return must_bytes(f[0], "to", 20), must_uint(f[1], "asset"), must_uint(f[2], "amount")


@dataclass(frozen=True, slots=True)
class Deposit:
    """Credits ``amount`` of ``asset`` to ``to``; only the bridge authority may sign it."""

    TAG: ClassVar[int] = 1
    to: bytes
    asset: int
    amount: int

    def fields(self) -> list[Any]:
        return [self.to, self.asset, self.amount]

    @classmethod
    def parse(cls, f: list[Any]) -> Deposit:
        return cls(*_to_asset_amount(f))


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Debits free balance; ``destination`` is an opaque address on the other side of the bridge."""

    TAG: ClassVar[int] = 2
    asset: int
    amount: int
    destination: bytes

    def fields(self) -> list[Any]:
        return [self.asset, self.amount, self.destination]

    @classmethod
    def parse(cls, f: list[Any]) -> Withdraw:
        return cls(
            must_uint(f[0], "asset"),
            must_uint(f[1], "amount"),
            must_bytes(f[2], "destination", max_len=MAX_WITHDRAW_DEST),
        )


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    TAG: ClassVar[int] = 3
    market: int
    is_buy: bool
    price: int  # ticks
    size: int  # lots
    tif: Tif
    reduce_only: bool
    cloid: bytes | None
    # good-til-time: the last block time (ms) the order may rest at; None = no expiry. The
    # 7-field form means None, the 8-field form needs an integer (one encoding per action)
    expires_at_ms: int | None = None

    def fields(self) -> list[Any]:
        out = [self.market, self.is_buy, self.price, self.size, int(self.tif), self.reduce_only, self.cloid]
        if self.expires_at_ms is not None:
            out.append(self.expires_at_ms)
        return out

    @classmethod
    def parse(cls, f: list[Any]) -> PlaceOrder:
        tif = must_uint(f[4], "tif")
        if tif >= len(_TIF_BY_CODE):
            raise TxError(Code.MALFORMED, "tif must be 0 (GTC), 1 (IOC) or 2 (ALO)")
        return cls(
            must_uint(f[0], "market"),
            must_bool(f[1], "is_buy"),
            must_uint(f[2], "price"),
            must_uint(f[3], "size"),
            _TIF_BY_CODE[tif],
            must_bool(f[5], "reduce_only"),
            _opt_cloid(f[6]),
            must_uint(f[7], "expires_at_ms", hi=MAX_TIME_MS) if len(f) > 7 else None,
        )


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel one order, named by exactly one of order id and client order id."""

    TAG: ClassVar[int] = 4
    market: int
    oid: int | None
    cloid: bytes | None

    def fields(self) -> list[Any]:
        return [self.market, self.oid, self.cloid]

    @classmethod
    def parse(cls, f: list[Any]) -> Cancel:
        oid, cloid = _opt_uint(f[1], "oid"), _opt_cloid(f[2])
        if (oid is None) == (cloid is None):
            raise TxError(Code.MALFORMED, "cancel names exactly one of oid and cloid")
        return cls(must_uint(f[0], "market"), oid, cloid)


@dataclass(frozen=True, slots=True)
class CancelAll:
    TAG: ClassVar[int] = 5
    market: int | None

    def fields(self) -> list[Any]:
        return [self.market]

    @classmethod
    def parse(cls, f: list[Any]) -> CancelAll:
        return cls(_opt_uint(f[0], "market"))


@dataclass(frozen=True, slots=True)
class Modify:
    """Cancel-replace: keeps time priority only when the price is unchanged and size shrinks."""

    TAG: ClassVar[int] = 6
    market: int
    oid: int | None
    cloid: bytes | None
    price: int
    size: int

    def fields(self) -> list[Any]:
        return [self.market, self.oid, self.cloid, self.price, self.size]

    @classmethod
    def parse(cls, f: list[Any]) -> Modify:
        oid, cloid = _opt_uint(f[1], "oid"), _opt_cloid(f[2])
        if (oid is None) == (cloid is None):
            raise TxError(Code.MALFORMED, "modify names exactly one of oid and cloid")
        return cls(must_uint(f[0], "market"), oid, cloid, must_uint(f[3], "price"), must_uint(f[4], "size"))


BatchItem = PlaceOrder | Cancel | CancelAll | Modify


@dataclass(frozen=True, slots=True)
class Batch:
    """Several order actions under one signature, applied in order; each gets its own result."""

    TAG: ClassVar[int] = 7
    actions: tuple[BatchItem, ...]

    def fields(self) -> list[Any]:
        return [[[a.TAG, *a.fields()] for a in self.actions]]

    @classmethod
    def parse(cls, f: list[Any]) -> Batch:
        items = must_list(f[0], "actions", max_len=256)
        parsed: list[BatchItem] = []
        for item in items:
            action = parse_action(item)
            if isinstance(action, Batch):
                raise TxError(Code.NESTED_BATCH, "a batch cannot contain a batch")
            if not isinstance(action, (PlaceOrder, Cancel, CancelAll, Modify)):
                raise TxError(Code.MALFORMED, "a batch holds only order, cancel, cancel_all and modify")
            parsed.append(action)
        if not parsed:
            raise TxError(Code.MALFORMED, "an empty batch")
        return cls(tuple(parsed))


@dataclass(frozen=True, slots=True)
class Lend:
    """Turn auto-lending of ``asset`` on (the default) or off. Off moves the supplied balance
    out of the pool (it stops earning and cannot be lent); on moves it back in."""

    TAG: ClassVar[int] = 10
    asset: int
    enabled: bool

    def fields(self) -> list[Any]:
        return [self.asset, self.enabled]

    @classmethod
    def parse(cls, f: list[Any]) -> Lend:
        return cls(must_uint(f[0], "asset"), must_bool(f[1], "enabled"))


@dataclass(frozen=True, slots=True)
class Borrow:
    """Draw ``amount`` of ``asset`` from its pool into the account's idle balance (the debt
    grows, the balance does not), allowed within initial margin and the utilization cap.
    The drawn funds can then be withdrawn or traded."""

    TAG: ClassVar[int] = 11
    asset: int
    amount: int

    def fields(self) -> list[Any]:
        return [self.asset, self.amount]

    @classmethod
    def parse(cls, f: list[Any]) -> Borrow:
        return cls(must_uint(f[0], "asset"), must_uint(f[1], "amount"))


@dataclass(frozen=True, slots=True)
class Repay:
    """Repay up to ``amount`` of the account's debt in ``asset`` from its idle balance of it
    (a balance in the pool repays debt by itself: credits always repay first)."""

    TAG: ClassVar[int] = 12
    asset: int
    amount: int

    def fields(self) -> list[Any]:
        return [self.asset, self.amount]

    @classmethod
    def parse(cls, f: list[Any]) -> Repay:
        return cls(must_uint(f[0], "asset"), must_uint(f[1], "amount"))


@dataclass(frozen=True, slots=True)
class OraclePrices:
    """A validator's price submissions: (asset, price in collateral units per whole unit)."""

    TAG: ClassVar[int] = 13
    prices: tuple[tuple[int, int], ...]

    def fields(self) -> list[Any]:
        return [[[a, p] for a, p in self.prices]]

    @classmethod
    def parse(cls, f: list[Any]) -> OraclePrices:
        items = must_list(f[0], "prices", max_len=64)
        if not items:
            raise TxError(Code.MALFORMED, "an oracle update needs at least one price")
        out = []
        for item in items:
            pair = must_list(item, "price", length=2)
            out.append((must_uint(pair[0], "asset"), must_uint(pair[1], "price")))
        return cls(tuple(out))


@dataclass(frozen=True, slots=True)
class SetUnwindOrder:
    """The order in which a liquidation unwinds this account's legs: market ids (a perp
    market = that position; a spot market = the balance of its base asset). Unlisted legs
    follow, largest risk contribution first. An empty list restores the default."""

    TAG: ClassVar[int] = 14
    markets: tuple[int, ...]

    def fields(self) -> list[Any]:
        return [list(self.markets)]

    @classmethod
    def parse(cls, f: list[Any]) -> SetUnwindOrder:
        items = must_list(f[0], "markets", max_len=64)
        return cls(tuple(must_uint(m, "market", hi=65535) for m in items))


@dataclass(frozen=True, slots=True)
class Transfer:
    """Send ``amount`` of ``asset`` from the signer's free balance to ``to`` (state/transfers.py)."""

    TAG: ClassVar[int] = 19
    to: bytes
    asset: int
    amount: int

    fields = Deposit.fields

    @classmethod
    def parse(cls, f: list[Any]) -> Transfer:
        return cls(*_to_asset_amount(f))


@dataclass(frozen=True, slots=True)
class UpdateLeverage:
    """The leverage the signer allows itself on a derivative market, 1..its ``max_leverage``
    (0 restores the maximum). It can only raise the initial requirement (state/leverage.py)."""

    TAG: ClassVar[int] = 20
    market: int
    leverage: int

    def fields(self) -> list[Any]:
        return [self.market, self.leverage]

    @classmethod
    def parse(cls, f: list[Any]) -> UpdateLeverage:
        return cls(must_uint(f[0], "market", hi=65535), must_uint(f[1], "leverage", hi=1000))


MAX_NAME_LEN: Final = 32


def _name(v: Any, what: str) -> str:
    if type(v) is not str or not 0 < len(v.encode()) <= MAX_NAME_LEN or not v.isprintable():
        raise TxError(Code.MALFORMED, f"{what} must be printable text of 1..{MAX_NAME_LEN} bytes")
    return v


@dataclass(frozen=True, slots=True)
class ApproveAgent:
    """Let the key whose address is ``agent`` trade for the signer (state/agents.py): place,
    cancel and modify orders, and act for its sub-accounts; never move funds. ``valid_until_ms``
    (0: no expiry) ends it at that block time."""

    TAG: ClassVar[int] = 21
    agent: bytes
    name: str
    valid_until_ms: int

    def fields(self) -> list[Any]:
        return [self.agent, self.name, self.valid_until_ms]

    @classmethod
    def parse(cls, f: list[Any]) -> ApproveAgent:
        return cls(must_bytes(f[0], "agent", 20), _name(f[1], "agent name"),
                   must_uint(f[2], "valid_until_ms", hi=MAX_TIME_MS))


@dataclass(frozen=True, slots=True)
class RevokeAgent:
    TAG: ClassVar[int] = 22
    agent: bytes

    def fields(self) -> list[Any]:
        return [self.agent]

    @classmethod
    def parse(cls, f: list[Any]) -> RevokeAgent:
        return cls(must_bytes(f[0], "agent", 20))


@dataclass(frozen=True, slots=True)
class CreateSubAccount:
    """A named sub-account of the signer: a full account with its own margin, at the address
    ``agents.sub_account_address(master, name)``."""

    TAG: ClassVar[int] = 23
    name: str

    def fields(self) -> list[Any]:
        return [self.name]

    @classmethod
    def parse(cls, f: list[Any]) -> CreateSubAccount:
        return cls(_name(f[0], "sub-account name"))


@dataclass(frozen=True, slots=True)
class ActAs:
    """Run ``action`` as the sub-account ``account`` of the signer (or of the master the
    signing agent trades for): Hyperliquid's ``vaultAddress``, inside the signed action."""

    TAG: ClassVar[int] = 24
    account: bytes
    action: Any

    def fields(self) -> list[Any]:
        return [self.account, action_to_list(self.action)]

    @classmethod
    def parse(cls, f: list[Any]) -> ActAs:
        inner = parse_action(f[1])
        if isinstance(inner, (ActAs, ApproveAgent, RevokeAgent, CreateSubAccount, Deposit, OraclePrices)):
            raise TxError(Code.MALFORMED, "a sub-account cannot be asked to do that")
        return cls(must_bytes(f[0], "account", 20), inner)


@dataclass(frozen=True, slots=True)
class SetMarginMode:
    """Trade a derivative market isolated (its own margin) or cross (the portfolio); switch
    only with no position or order there (state/isolated.py)."""

    TAG: ClassVar[int] = 25
    market: int
    isolated: bool

    def fields(self) -> list[Any]:
        return [self.market, self.isolated]

    @classmethod
    def parse(cls, f: list[Any]) -> SetMarginMode:
        return cls(must_uint(f[0], "market", hi=65535), must_bool(f[1], "isolated"))


@dataclass(frozen=True, slots=True)
class UpdateIsolatedMargin:
    """Move ``amount`` USDC into (positive) or out of (negative) an isolated market's margin."""

    TAG: ClassVar[int] = 26
    market: int
    amount: int

    def fields(self) -> list[Any]:
        return [self.market, self.amount]

    @classmethod
    def parse(cls, f: list[Any]) -> UpdateIsolatedMargin:
        amount = must_int(f[1], "amount")
        if abs(amount) > MAX_AMOUNT:
            raise TxError(Code.MALFORMED, "amount must be within +-2^62")
        return cls(must_uint(f[0], "market", hi=65535), amount)


@dataclass(frozen=True, slots=True)
class ScheduleCancel:
    """The dead-man switch (Hyperliquid's scheduleCancel): at block time ``time_ms`` every
    open order of the signer is cancelled unless the switch is renewed or cleared first.
    None clears it. (state/lifetimes.py)"""

    TAG: ClassVar[int] = 16
    time_ms: int | None

    def fields(self) -> list[Any]:
        return [self.time_ms]

    @classmethod
    def parse(cls, f: list[Any]) -> ScheduleCancel:
        return cls(None if f[0] is None else must_uint(f[0], "time_ms", hi=MAX_TIME_MS))


@dataclass(frozen=True, slots=True)
class PlaceTrigger:
    """A stop / take-profit order resting outside the book until the reference price
    crosses ``trigger_price`` (state/triggers.py). ``tpsl``: 0 take-profit, 1 stop-loss.
    ``size`` 0 on a reduce-only perp trigger is a position TP/SL: the whole position
    whatever its size when it fires. ``limit_price`` is 0 for a market trigger."""

    TAG: ClassVar[int] = 15
    market: int
    is_buy: bool
    size: int  # lots (0: the whole position)
    trigger_price: int  # ticks
    tpsl: int  # 0 = tp, 1 = sl
    is_market: bool
    limit_price: int  # ticks; 0 for a market trigger
    reduce_only: bool
    cloid: bytes | None

    def fields(self) -> list[Any]:
        return [self.market, self.is_buy, self.size, self.trigger_price, self.tpsl, self.is_market,
                self.limit_price, self.reduce_only, self.cloid]

    @classmethod
    def parse(cls, f: list[Any]) -> PlaceTrigger:
        return cls(
            must_uint(f[0], "market"),
            must_bool(f[1], "is_buy"),
            must_uint(f[2], "size"),
            must_uint(f[3], "trigger_price"),
            must_uint(f[4], "tpsl", hi=1),
            must_bool(f[5], "is_market"),
            must_uint(f[6], "limit_price"),
            must_bool(f[7], "reduce_only"),
            _opt_cloid(f[8]),
        )


@dataclass(frozen=True, slots=True)
class ModifyTrigger:
    """Replace a waiting trigger's trigger price, limit price and size (checked like a new
    one; it keeps its oid). Names exactly one of oid and cloid."""

    TAG: ClassVar[int] = 18
    market: int
    oid: int | None
    cloid: bytes | None
    trigger_price: int
    limit_price: int
    size: int

    def fields(self) -> list[Any]:
        return [self.market, self.oid, self.cloid, self.trigger_price, self.limit_price, self.size]

    @classmethod
    def parse(cls, f: list[Any]) -> ModifyTrigger:
        oid, cloid = _opt_uint(f[1], "oid"), _opt_cloid(f[2])
        if (oid is None) == (cloid is None):
            raise TxError(Code.MALFORMED, "modify_trigger names exactly one of oid and cloid")
        return cls(must_uint(f[0], "market"), oid, cloid, must_uint(f[3], "trigger_price"),
                   must_uint(f[4], "limit_price"), must_uint(f[5], "size"))


@dataclass(frozen=True, slots=True)
class PlaceGroup:
    """Orders placed together (state/triggers.py). ``grouping`` 1 (normalTpsl): ``parent``
    is a PlaceOrder and the children (size 0, opposite side, same market) are its TP and/or
    SL, live only as far as the parent fills, one-cancels-other. ``grouping`` 2
    (positionTpsl): no parent, the children are position TP/SLs (size 0, reduce-only)."""

    TAG: ClassVar[int] = 17
    grouping: int  # 1 = normalTpsl, 2 = positionTpsl
    parent: PlaceOrder | None
    children: tuple[PlaceTrigger, ...]

    def fields(self) -> list[Any]:
        return [self.grouping, None if self.parent is None else action_to_list(self.parent),
                [action_to_list(c) for c in self.children]]

    @property
    def market(self) -> int:
        """The group's market: its orders are all on one (checked when it is placed)."""
        return self.parent.market if self.parent is not None else self.children[0].market

    @classmethod
    def parse(cls, f: list[Any]) -> PlaceGroup:
        grouping = must_uint(f[0], "grouping", hi=2)
        if grouping == 0:
            raise TxError(Code.MALFORMED, "grouping must be 1 (normalTpsl) or 2 (positionTpsl)")
        parent = None if f[1] is None else parse_action(f[1])
        if (parent is None) != (grouping == 2) or (parent is not None and not isinstance(parent, PlaceOrder)):
            raise TxError(Code.MALFORMED, "normalTpsl needs a parent order; positionTpsl has none")
        items = must_list(f[2], "children", max_len=2)
        children = tuple(parse_action(c) for c in items)
        if not children or not all(isinstance(c, PlaceTrigger) for c in children):
            raise TxError(Code.MALFORMED, "a group's children are one or two trigger orders")
        if len({c.tpsl for c in children}) != len(children):
            raise TxError(Code.MALFORMED, "a group has at most one take-profit and one stop-loss")
        return cls(grouping, parent, children)


Action = (Deposit | Withdraw | PlaceOrder | Cancel | CancelAll | Modify | Batch | Lend | Borrow | Repay
          | OraclePrices | SetUnwindOrder | ScheduleCancel | Transfer | UpdateLeverage | ApproveAgent | RevokeAgent
          | CreateSubAccount | ActAs | SetMarginMode | UpdateIsolatedMargin | PlaceTrigger | ModifyTrigger
          | PlaceGroup)

ACTION_TYPES: dict[int, Any] = {}
_ARITY: dict[int, tuple[int, ...]] = {}  # tag -> the field counts it accepts


def register_action(cls: Any, arity: int | tuple[int, ...]) -> None:
    """Later modules (lending, oracle, risk) add their actions here at import time. A tuple
    arity allows optional trailing fields (PlaceOrder: 7, or 8 with an expiry)."""
    if cls.TAG in ACTION_TYPES:
        raise ValueError(f"action tag {cls.TAG} registered twice")
    ACTION_TYPES[cls.TAG] = cls
    _ARITY[cls.TAG] = arity if isinstance(arity, tuple) else (arity,)


_n: int | tuple[int, ...]
for _cls, _n in ((Deposit, 3), (Withdraw, 3), (PlaceOrder, (7, 8)), (Cancel, 3), (CancelAll, 1), (Modify, 5), (Batch, 1),
                 (Lend, 2), (Borrow, 2), (Repay, 2), (OraclePrices, 1), (SetUnwindOrder, 1), (ScheduleCancel, 1),
                 (Transfer, 3), (UpdateLeverage, 2), (ApproveAgent, 3), (RevokeAgent, 1), (CreateSubAccount, 1),
                 (ActAs, 2), (SetMarginMode, 2), (UpdateIsolatedMargin, 2),
                 (PlaceTrigger, 9), (ModifyTrigger, 6), (PlaceGroup, 3)):
    register_action(_cls, _n)

ACTION_NAMES = {
    Deposit: "deposit", Withdraw: "withdraw", PlaceOrder: "order", Cancel: "cancel",
    CancelAll: "cancel_all", Modify: "modify", Batch: "batch", Lend: "lend", Borrow: "borrow",
    Repay: "repay", OraclePrices: "oracle", SetUnwindOrder: "set_unwind_order",
    ScheduleCancel: "schedule_cancel", Transfer: "transfer",
    UpdateLeverage: "update_leverage", ApproveAgent: "approve_agent", RevokeAgent: "revoke_agent",
    CreateSubAccount: "create_sub_account", ActAs: "act_as", SetMarginMode: "set_margin_mode",
    UpdateIsolatedMargin: "update_isolated_margin",
    PlaceTrigger: "trigger", ModifyTrigger: "modify_trigger", PlaceGroup: "group",
}


def action_to_list(action: Any) -> list[Any]:
    return [action.TAG, *action.fields()]


def parse_action(obj: Any) -> Any:
    items = must_list(obj, "action", max_len=16)
    if not items or type(items[0]) is not int:
        raise TxError(Code.MALFORMED, "an action starts with its integer tag")
    tag = items[0]
    cls = ACTION_TYPES.get(tag)
    if cls is None:
        raise TxError(Code.UNKNOWN_TX_TYPE, f"unknown action tag {tag}")
    arity = _ARITY[tag]
    if len(items) - 1 not in arity:
        raise TxError(Code.MALFORMED, f"action {tag} takes {' or '.join(map(str, arity))} fields, got {len(items) - 1}")
    return cls.parse(items[1:])


@dataclass(frozen=True, slots=True)
class SignedTx:
    pubkey: bytes
    nonce: int
    action: Any
    signature: bytes
    raw: bytes
    hash: bytes
    signer: bytes  # address_of(pubkey), derived once at decode (a Hyperliquid tx: the recovered address)
    expires_after: int | None = None  # block time (ms) after which the tx is TX_EXPIRED
    # SCHEME_ED25519, or SCHEME_HL: a Hyperliquid-signed tx (state/hltx.py), whose signature
    # was checked by recovering ``signer`` at decode and whose action is an HlAction
    scheme: int = 0

    def sign_payload(self) -> bytes:
        return self.raw[1:-(SIG_LEN + 2)]

    def verify_signature(self, chain_id: str) -> bool:
        if self.scheme == SCHEME_HL:
            return True  # decode recovered the signer; any other signature names another signer
        signature, message, pubkey = self.signature_item(chain_id)
        return verify(pubkey, message, signature)

    def signature_item(self, chain_id: str) -> SigItem:
        """(signature, signed message, public key): what ``verify_signature`` checks, and
        what batch verifiers are handed (``state.machine.decode_verified_many``)."""
        return self.signature, signing_message(DOMAIN_TX, chain_id, self.sign_payload()), self.pubkey


# pubkey -> address: a node sees the same signers over and over, and hashing the key is a
# tenth of a decode. A pure function's cache (dict get/set are atomic, so the verification
# threads can share it); cleared when full rather than evicting one by one.
_SIGNERS: dict[bytes, bytes] = {}
_SIGNERS_MAX = 100_000


SCHEME_ED25519: Final = 0
SCHEME_HL: Final = 1


def decode_tx(raw: bytes, *, max_bytes: int = MAX_TX_BYTES) -> SignedTx:
    """Strictly decode a signed transaction (structure only; an ed25519 signature is checked
    apart, a Hyperliquid one is checked here by recovering its signer: state/hltx.py)."""
    if raw[:4] == hltx.PREFIX:
        return _decode_hl(raw, max_bytes)
    obj = decode(raw, max_bytes=max_bytes)
    items = must_list(obj, "tx", max_len=5)
    if len(items) not in (4, 5):
        raise TxError(Code.MALFORMED, "a transaction is [pubkey, nonce, action, (expires_after,) signature]")
    pubkey = must_bytes(items[0], "pubkey", PUBKEY_LEN)
    nonce = must_uint(items[1], "nonce")
    action = parse_action(items[2])
    expires_after = must_uint(items[3], "expires_after", hi=MAX_TIME_MS) if len(items) == 5 else None
    signature = must_bytes(items[-1], "signature", SIG_LEN)
    if type(raw) is not bytes:
        raw = bytes(raw)
    signer = _SIGNERS.get(pubkey)
    if signer is None:
        if len(_SIGNERS) >= _SIGNERS_MAX:
            _SIGNERS.clear()
        signer = _SIGNERS[pubkey] = address_of(pubkey)
    return SignedTx(pubkey, nonce, action, signature, raw, hashlib.sha256(raw).digest(), signer, expires_after)


def _decode_hl(raw: bytes, max_bytes: int) -> SignedTx:
    env = hltx.decode_envelope(raw, max_bytes)
    raw = bytes(raw)
    return SignedTx(b"", env.nonce, env.action, env.signature, raw, hashlib.sha256(raw).digest(), env.signer(),
                    env.expires_after, SCHEME_HL)


def sign_tx(key: PrivateKey, nonce: int, action: Any, chain_id: str, expires_after: int | None = None) -> bytes:
    """Build the canonical signed bytes of ``action`` by ``key`` (with ``expires_after``:
    the five-element envelope, rejected by any block whose time is past it)."""
    payload = encode(key.pubkey) + encode(nonce) + encode(action_to_list(action))
    if expires_after is not None:
        payload += encode(expires_after)
    signature = key.sign(signing_message(DOMAIN_TX, chain_id, payload))
    return (b"\x94" if expires_after is None else b"\x95") + payload + encode(signature)


def tx_hash(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()
