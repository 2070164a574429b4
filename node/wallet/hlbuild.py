"""Native actions as Hyperliquid action maps: how the CLI signs with a secp256k1 key.

A secp256k1 (Ethereum) key cannot sign a native transaction: the chain checks ed25519
signatures there. It signs what Hyperliquid's clients sign instead (state/hltx.py), and the
chain maps that action back onto a native one (state/hlexec.py). So the CLI builds the very
native action it would sign with an ed25519 key (node/wallet/txbuild.py) and this module
writes the Hyperliquid action that ``state.hlexec.resolve`` turns back into it: one set of
builders for human input, and a receipt that means the same whichever key signed.

What maps (native -> Hyperliquid):

- ``PlaceOrder`` (and a ``Batch`` of them) -> ``order`` with grouping ``na``; ``PlaceTrigger``
  -> an order wire of type ``trigger``; ``PlaceGroup`` -> ``normalTpsl`` / ``positionTpsl``;
- ``Cancel`` (and a ``Batch`` of them, all by oid or all by cloid) -> ``cancel`` /
  ``cancelByCloid``; ``Modify`` (and a ``Batch`` of them) -> ``modify`` / ``batchModify``,
  which restate the whole order: its side, time in force, reduce-only flag and cloid come
  from the open order itself (``HlContext.resting``, read from the node);
- ``UpdateLeverage`` -> ``updateLeverage`` (``isCross`` is the account's current mode, so
  the mode stays), ``UpdateIsolatedMargin`` -> ``updateIsolatedMargin``, ``ScheduleCancel``,
  ``CreateSubAccount``, ``Lend`` / ``Borrow`` / ``Repay`` -> ``borrowLend``;
- ``Transfer`` -> ``usdSend`` (the collateral) or ``spotSend``; ``Withdraw`` of the
  collateral to a 20-byte address -> ``withdraw3``; ``ApproveAgent`` -> ``approveAgent``
  (the expiry as the name's ``valid_until`` suffix, as Hyperliquid writes it);
- ``ActAs(sub, x)`` -> ``x`` with ``vaultAddress`` = sub for an L1 action, and
  ``ActAs(sub, Transfer(master, ...))`` -> ``subAccountTransfer`` / ``subAccountSpotTransfer``.

Anything else (deposits, cancel-all, trigger modifies, margin mode, unwind order, revoking an agent,
good-til-time orders) has no Hyperliquid action the chain executes, and is refused with
``NO_HYPERLIQUID_EQUIVALENT``. Numbers are written as Hyperliquid's decimal strings; a price
Hyperliquid's rules refuse (more than five significant figures with decimals) is refused
here, before signing, with the rule it breaks. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from node.wallet.units import Catalog, MarketInfo, UnitError
from state import hltx
from state.eip712 import EthKey, checksum_address
from state.hlassets import (
    MAX_SIG_FIGS,
    PERP_MAX_DECIMALS,
    SPOT_MAX_DECIMALS,
    SPOT_OFFSET,
)
from state.keys import address_to_text
from state.tx import (
    ActAs,
    ApproveAgent,
    Batch,
    Borrow,
    Cancel,
    CreateSubAccount,
    Lend,
    Modify,
    PlaceGroup,
    PlaceOrder,
    PlaceTrigger,
    Repay,
    ScheduleCancel,
    Tif,
    Transfer,
    UpdateIsolatedMargin,
    UpdateLeverage,
    Withdraw,
)
from state.units import sz_decimals

NO_EQUIVALENT: Final = "NO_HYPERLIQUID_EQUIVALENT"
COLLATERAL_ASSET: Final = 0  # the first genesis asset settles perps (state/exchange.py)
_TIF_NAMES: Final = {Tif.GTC: "Gtc", Tif.IOC: "Ioc", Tif.ALO: "Alo"}
_TPSL_NAMES: Final = ("tp", "sl")
_USD_DECIMALS: Final = 6  # ntli and usd of Hyperliquid's actions are in 10^-6 USDC


class HlBuildError(UnitError):
    """The action cannot be written as a Hyperliquid action; ``code`` is stable."""

    def __init__(self, message: str, code: str = NO_EQUIVALENT) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class HlRequest:
    """What a secp256k1 key signs: the action map, the sub-account an L1 action acts for,
    and which of Hyperliquid's two signing schemes it takes."""

    action: dict[str, Any]
    vault: bytes | None
    user_signed: bool


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """An open order as the node lists it: what a Hyperliquid modify must restate."""

    market: int
    oid: int
    is_buy: bool
    tif: Tif
    reduce_only: bool
    cloid: bytes | None


@dataclass(frozen=True, slots=True)
class HlContext:
    """What the mapping needs besides the action: the node's markets and assets, the
    account the key acts for (a sub-account's funds go back only to it), the markets that
    account trades isolated (``updateLeverage`` restates the margin mode) and its open
    orders (a modify restates the order)."""

    cat: Catalog
    account: bytes
    isolated: frozenset[int] = frozenset()
    resting: tuple[RestingOrder, ...] = ()


# ------------------------------------------------------------------------ numbers and ids
def asset_id(cat: Catalog, market: int) -> int:
    """Hyperliquid's asset number of ``market`` (state/hlassets.py): perps then dated futures
    by market id, spot pairs from 10000 by market id."""
    perps = [m.id for m in cat.markets if m.kind == "perp"] + [m.id for m in cat.markets if m.kind == "future"]
    if market in perps:
        return perps.index(market)
    spots = [m.id for m in cat.markets if m.kind == "spot"]
    if market in spots:
        return SPOT_OFFSET + spots.index(market)
    raise HlBuildError(f"market {market} is not in Hyperliquid's numbering (kind unknown)", "UNKNOWN_MARKET")


def _is_derivative(m: MarketInfo) -> bool:
    return m.kind in ("perp", "future")


def _digits(text: str) -> tuple[str, int]:
    """The significant digits of a plain decimal and its count of decimals."""
    whole, _, frac = text.partition(".")
    return (whole + frac).lstrip("0"), len(frac)


def price_text(m: MarketInfo, ticks: int) -> str:
    """``ticks`` as the price string Hyperliquid's rules accept, or an error naming the rule."""
    text = m.ticks_to_price(ticks)
    digits, places = _digits(text)
    max_places = max(0, (PERP_MAX_DECIMALS if _is_derivative(m) else SPOT_MAX_DECIMALS)
                     - sz_decimals(m.lot_size, m.base.decimals))
    if places > max_places:
        raise HlBuildError(f"{m.symbol} price {text} has more than {max_places} decimals, which a "
                           "Hyperliquid-signed order cannot carry", "BAD_DECIMAL")
    if places and len(digits) > MAX_SIG_FIGS:
        raise HlBuildError(f"{m.symbol} price {text} has more than {MAX_SIG_FIGS} significant figures, which a "
                           "Hyperliquid-signed order cannot carry (an integer price can)", "BAD_DECIMAL")
    return text


def size_text(m: MarketInfo, lots: int) -> str:
    return m.lots_to_size(lots)


def amount_text(cat: Catalog, asset: int, units: int) -> str:
    return cat.asset(asset).from_units(units)


def _usd_micro(cat: Catalog, units: int) -> int:
    """Collateral smallest units as Hyperliquid's integer 10^-6 USDC."""
    decimals = cat.asset(COLLATERAL_ASSET).decimals
    scaled = units * 10**_USD_DECIMALS
    if scaled % 10**decimals:
        raise HlBuildError("the amount is finer than 10^-6 USDC", "BAD_DECIMAL")
    return int(scaled // 10**decimals)


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _address(raw: bytes, what: str) -> str:
    if len(raw) != 20:
        raise HlBuildError(f"{what} must be a 20-byte address for a Hyperliquid-signed action")
    return address_to_text(raw)


# ------------------------------------------------------------------------------ L1 actions
def order_wire(cat: Catalog, o: PlaceOrder | PlaceTrigger) -> dict[str, Any]:
    """One order ``{a, b, p, s, r, t, c?}`` as the SDK writes it."""
    m = cat.market(o.market)
    wire: dict[str, Any] = {"a": asset_id(cat, o.market), "b": o.is_buy}
    if isinstance(o, PlaceOrder):
        if o.expires_at_ms is not None:
            raise HlBuildError("a good-til-time order (--expires-in/--expires-at) has no Hyperliquid equivalent")
        wire.update({"p": price_text(m, o.price), "s": size_text(m, o.size), "r": o.reduce_only,
                     "t": {"limit": {"tif": _TIF_NAMES[Tif(o.tif)]}}})
    else:
        trigger = price_text(m, o.trigger_price)
        wire.update({"p": trigger if o.is_market else price_text(m, o.limit_price), "s": size_text(m, o.size),
                     "r": o.reduce_only,
                     "t": {"trigger": {"isMarket": o.is_market, "triggerPx": trigger, "tpsl": _TPSL_NAMES[o.tpsl]}}})
    if o.cloid is not None:
        wire["c"] = _hex(o.cloid)
    return wire


def _orders(cat: Catalog, orders: list[PlaceOrder | PlaceTrigger], grouping: str = "na") -> dict[str, Any]:
    return {"type": "order", "orders": [order_wire(cat, o) for o in orders], "grouping": grouping}


def _cancels(cat: Catalog, cancels: list[Cancel]) -> dict[str, Any]:
    if all(c.oid is not None for c in cancels):
        return {"type": "cancel", "cancels": [{"a": asset_id(cat, c.market), "o": c.oid} for c in cancels]}
    if all(c.oid is None and c.cloid is not None for c in cancels):
        return {"type": "cancelByCloid",
                "cancels": [{"asset": asset_id(cat, c.market), "cloid": _hex(c.cloid or b"")} for c in cancels]}
    raise HlBuildError("one Hyperliquid cancel names its orders all by oid or all by cloid")


def _modify_entry(hc: HlContext, m: Modify) -> dict[str, Any]:
    """``{oid, order}``: the order restated with the new price and size."""
    for r in hc.resting:
        if r.market == m.market and ((m.oid is not None and r.oid == m.oid)
                                     or (m.oid is None and m.cloid is not None and r.cloid == m.cloid)):
            order = PlaceOrder(m.market, r.is_buy, m.price, m.size, r.tif, r.reduce_only, r.cloid)
            return {"oid": m.oid if m.oid is not None else _hex(m.cloid or b""), "order": order_wire(hc.cat, order)}
    which = f"oid {m.oid}" if m.oid is not None else f"cloid {_hex(m.cloid or b'')}"
    raise HlBuildError(f"no open order with {which} on {hc.cat.market(m.market).symbol}: a Hyperliquid modify "
                       "restates the whole order, so it needs the open order", "UNKNOWN_ORDER")


def _batch(hc: HlContext, b: Batch) -> dict[str, Any]:
    items = list(b.actions)
    if all(isinstance(a, PlaceOrder) for a in items):
        return _orders(hc.cat, [a for a in items if isinstance(a, PlaceOrder)])
    if all(isinstance(a, Cancel) for a in items):
        return _cancels(hc.cat, [a for a in items if isinstance(a, Cancel)])
    if all(isinstance(a, Modify) for a in items):
        return {"type": "batchModify", "modifies": [_modify_entry(hc, a) for a in items if isinstance(a, Modify)]}
    raise HlBuildError("a batch signed by a secp256k1 key holds only orders, only cancels or only modifies "
                       "(Hyperliquid signs one kind of action at a time)")


def _leverage(hc: HlContext, u: UpdateLeverage) -> dict[str, Any]:
    if u.leverage == 0:
        raise HlBuildError("Hyperliquid's updateLeverage takes a number: give the market's maximum "
                           "(shown by `query markets`) instead of `max`")
    return {"type": "updateLeverage", "asset": asset_id(hc.cat, u.market), "isCross": u.market not in hc.isolated,
            "leverage": u.leverage}


def _borrow_lend(cat: Catalog, action: Lend | Borrow | Repay) -> dict[str, Any]:
    if isinstance(action, Lend):
        return {"type": "borrowLend", "operation": "supply" if action.enabled else "withdraw",
                "token": action.asset, "amount": None}
    operation = "borrow" if isinstance(action, Borrow) else "repay"
    return {"type": "borrowLend", "operation": operation, "token": action.asset,
            "amount": amount_text(cat, action.asset, action.amount)}


def l1_action(hc: HlContext, action: Any) -> dict[str, Any] | None:
    """The L1 action map of ``action``, or None when it is not an L1 action."""
    cat = hc.cat
    if isinstance(action, (PlaceOrder, PlaceTrigger)):
        return _orders(cat, [action])
    if isinstance(action, PlaceGroup):
        if action.grouping == 1 and action.parent is not None:
            return _orders(cat, [action.parent, *action.children], "normalTpsl")
        return _orders(cat, list(action.children), "positionTpsl")
    if isinstance(action, Cancel):
        return _cancels(cat, [action])
    if isinstance(action, Modify):
        return {"type": "modify", **_modify_entry(hc, action)}
    if isinstance(action, Batch):
        return _batch(hc, action)
    if isinstance(action, UpdateLeverage):
        return _leverage(hc, action)
    if isinstance(action, UpdateIsolatedMargin):
        return {"type": "updateIsolatedMargin", "asset": asset_id(cat, action.market), "isBuy": True,
                "ntli": _usd_micro(cat, action.amount)}
    if isinstance(action, ScheduleCancel):
        return {"type": "scheduleCancel"} if action.time_ms is None else {"type": "scheduleCancel",
                                                                          "time": action.time_ms}
    if isinstance(action, CreateSubAccount):
        return {"type": "createSubAccount", "name": action.name}
    if isinstance(action, (Lend, Borrow, Repay)):
        return _borrow_lend(cat, action)
    return None


# ---------------------------------------------------------------------- user-signed actions
def user_action(hc: HlContext, action: Any, nonce: int) -> dict[str, Any] | None:
    """The user-signed action map of ``action`` (its time/nonce field = ``nonce``), or None."""
    cat = hc.cat
    if isinstance(action, Transfer):
        to = _address(action.to, "the recipient")
        amount = amount_text(cat, action.asset, action.amount)
        if action.asset == COLLATERAL_ASSET:
            return {"type": "usdSend", "destination": to, "amount": amount, "time": nonce}
        return {"type": "spotSend", "destination": to, "token": cat.asset(action.asset).symbol, "amount": amount,
                "time": nonce}
    if isinstance(action, Withdraw):
        if action.asset != COLLATERAL_ASSET:
            raise HlBuildError(f"Hyperliquid withdraws only {cat.asset(COLLATERAL_ASSET).symbol} (withdraw3)")
        return {"type": "withdraw3", "destination": _address(action.destination, "the destination"),
                "amount": amount_text(cat, action.asset, action.amount), "time": nonce}
    if isinstance(action, ApproveAgent):
        name = action.name + (f" valid_until {action.valid_until_ms}" if action.valid_until_ms else "")
        return {"type": "approveAgent", "agentAddress": checksum_address(action.agent), "agentName": name,
                "nonce": nonce}
    return None


def _from_sub_account(hc: HlContext, sub: bytes, t: Transfer) -> dict[str, Any]:
    """``ActAs(sub, Transfer(master, ...))``: Hyperliquid's transfer out of a sub-account."""
    if t.to != hc.account:
        raise HlBuildError("Hyperliquid moves a sub-account's funds only to its master account")
    if t.asset == COLLATERAL_ASSET:
        return {"type": "subAccountTransfer", "subAccountUser": address_to_text(sub), "isDeposit": False,
                "usd": _usd_micro(hc.cat, t.amount)}
    return {"type": "subAccountSpotTransfer", "subAccountUser": address_to_text(sub), "isDeposit": False,
            "token": hc.cat.asset(t.asset).symbol, "amount": amount_text(hc.cat, t.asset, t.amount)}


def build(hc: HlContext, action: Any, nonce: int) -> HlRequest:
    """The Hyperliquid request for native ``action``; HlBuildError when there is none."""
    if isinstance(action, ActAs):
        inner = action.action
        if isinstance(inner, Transfer):
            return HlRequest(_from_sub_account(hc, action.account, inner), None, False)
        l1 = l1_action(hc, inner)
        if l1 is None:
            raise HlBuildError(f"{type(inner).__name__} for a sub-account has no Hyperliquid equivalent")
        return HlRequest(l1, action.account, False)
    l1 = l1_action(hc, action)
    if l1 is not None:
        return HlRequest(l1, None, False)
    user = user_action(hc, action, nonce)
    if user is not None:
        return HlRequest(user, None, True)
    raise HlBuildError(f"{type(action).__name__} has no Hyperliquid equivalent")


def sign(key: EthKey, request: HlRequest, nonce: int, *, expires_after_ms: int | None = None) -> bytes:
    """The on-chain bytes, signed as the Hyperliquid SDK signs (L1: the phantom agent with
    the vault and expiry; user-signed: the typed data, which carries neither)."""
    if request.user_signed:
        if expires_after_ms is not None:
            raise HlBuildError("a user-signed Hyperliquid action (transfers, withdrawals, agents) has no "
                               "expiresAfter: drop --expires-after")
        return hltx.sign_user(key, request.action)
    return hltx.sign_l1(key, request.action, nonce, request.vault, expires_after_ms)
