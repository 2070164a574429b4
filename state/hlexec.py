"""Hyperliquid actions mapped onto bookchain's own actions, when a block applies them.

A Hyperliquid-signed transaction (state/hltx.py) carries the action map its client signed.
Executing it means building the native action that does the same thing and running it
through the same handlers, checks and receipts as a native transaction: the map is read
here, with the markets at hand, exactly (decimal strings become ticks, lots and smallest
units or the action is refused with ``BAD_DECIMAL``; asset ids are Hyperliquid's numbering,
state/hlassets.py). Nothing here changes state; ``resolve`` only reads it.

The mapping (Hyperliquid -> bookchain):

- ``order``: each order wire is a ``PlaceOrder`` (limit: ``Gtc``, ``Ioc``, ``Alo``;
  ``FrontendMarket`` is IOC) or a ``PlaceTrigger`` (``trigger``: market or limit stop /
  take-profit), in a ``Batch`` so each gets its own result (an order the mapping refuses
  keeps its slot as ``Refused``: the others still run, unless none is left); grouping ``normalTpsl`` is a
  ``PlaceGroup`` (the parent and its TP/SL, one-cancels-other), ``positionTpsl`` a
  position TP/SL group (sized to the whole position).
- ``cancel`` / ``cancelByCloid``: ``Cancel`` each, in a ``Batch``.
- ``modify`` / ``batchModify``: ``Modify`` (price and size) of a resting order, or
  ``ModifyTrigger`` of a waiting trigger; a modify that changes the side, time in force,
  reduce-only flag or cloid is a cancel and a new order, as Hyperliquid does it.
- ``scheduleCancel``, ``updateLeverage`` (with ``isCross``: the margin mode, switched
  first when it differs), ``updateIsolatedMargin`` (``ntli``, collateral in 10^-6),
  ``createSubAccount``, ``subAccountTransfer`` / ``subAccountSpotTransfer`` (a transfer to
  the sub-account, or from it acting for it), ``usdSend`` / ``spotSend`` (``transfer``),
  ``withdraw3`` (``withdraw`` to the 20-byte destination), ``approveAgent`` (a name ending
  ``valid_until <ms>`` sets the expiry, as Hyperliquid's does).
- ``borrowLend``: ``lend`` on / off (``supply`` / ``withdraw`` with amount null: lending
  here is a switch over the whole balance), ``borrow``, ``repay`` (null: the whole debt).
- ``noop`` and ``usdClassTransfer`` (one account holds spot and perps here) use the nonce
  and do nothing else.
- ``vaultAddress`` on an L1 action is ``act_as`` of that sub-account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from state import agents, hlassets, isolated, lapse
from state.errors import Code, TxError
from state.exchange import Exchange
from state.hltx import HlAction
from state.keys import bytes_from_hex
from state.receipts import ActionResult, rejected
from state.tx import (
    MAX_NAME_LEN,
    ActAs,
    ApproveAgent,
    Batch,
    Borrow,
    Cancel,
    CreateSubAccount,
    Lend,
    Modify,
    ModifyTrigger,
    PlaceGroup,
    PlaceOrder,
    PlaceTrigger,
    Repay,
    ScheduleCancel,
    SetMarginMode,
    SignedTx,
    Tif,
    Transfer,
    UpdateIsolatedMargin,
    UpdateLeverage,
    Withdraw,
)
from state.units import MAX_AMOUNT, MAX_TIME_MS

MAX_ORDERS: Final = 256  # per action; the block's max_batch_actions bounds it further
_TIFS: Final = {"Gtc": Tif.GTC, "Ioc": Tif.IOC, "Alo": Tif.ALO, "FrontendMarket": Tif.IOC}
_TPSL: Final = {"tp": 0, "sl": 1}
_VALID_UNTIL: Final = " valid_until "
NOOP: Final = Batch(())  # uses the nonce, runs nothing (apply_tx answers OK)


def _choice(table: dict[str, Any], value: Any, what: str) -> Any:
    """``table[value]`` for a text ``value`` (a list or map there must not reach a dict look-up)."""
    found = table.get(value) if type(value) is str else None
    if found is None:
        raise TxError(Code.MALFORMED, f"{what} must be one of {', '.join(table)}")
    return found


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if type(value) is not kind:
        raise TxError(Code.MALFORMED, f"{name} must be a {kind.__name__}")
    return value


def _list(body: dict[str, Any], name: str) -> list[Any]:
    items: list[Any] = _field(body, name, list)
    if not items or len(items) > MAX_ORDERS:
        raise TxError(Code.MALFORMED, f"{name} holds 1..{MAX_ORDERS} entries")
    return items


def _address(text: Any, what: str) -> bytes:
    if type(text) is not str or len(text) != 42 or not text.startswith(("0x", "0X")):
        raise TxError(Code.MALFORMED, f"{what} must be a 0x address")
    try:
        return bytes_from_hex(text[2:])  # not bytes.fromhex: it skips whitespace
    except ValueError:
        raise TxError(Code.MALFORMED, f"{what} must be a 0x address") from None


def _cloid(text: Any) -> bytes:
    if type(text) is not str or len(text) != 34 or not text.startswith("0x"):
        raise TxError(Code.MALFORMED, "a cloid is 0x and 32 hex digits")
    try:
        return bytes_from_hex(text[2:])
    except ValueError:
        raise TxError(Code.MALFORMED, "a cloid is 0x and 32 hex digits") from None


def _opt_cloid(wire: dict[str, Any]) -> bytes | None:
    return None if wire.get("c") is None else _cloid(wire["c"])


def _order(ex: Exchange, wire: Any, child: bool = False) -> PlaceOrder | PlaceTrigger:
    """One order wire ``{a, b, p, s, r, t, c?}``; a group's ``child`` is sized by its parent
    or the position (size 0)."""
    if type(wire) is not dict:
        raise TxError(Code.MALFORMED, "an order is an object")
    market = hlassets.market_of_asset(ex, wire.get("a"))
    is_buy = _field(wire, "b", bool)
    reduce_only = _field(wire, "r", bool)
    price = hlassets.price_ticks(ex, market, wire.get("p"))
    size = hlassets.size_lots(ex, market, wire.get("s"))
    cloid = _opt_cloid(wire)
    kind = _field(wire, "t", dict)
    if len(kind) != 1:
        raise TxError(Code.MALFORMED, "an order type is {limit: ...} or {trigger: ...}")
    if "limit" in kind:
        tif = _choice(_TIFS, _field(kind, "limit", dict).get("tif"), "tif")
        return PlaceOrder(market, is_buy, price, size, tif, reduce_only, cloid)
    trig = _field(kind, "trigger", dict)
    tpsl = _choice(_TPSL, trig.get("tpsl"), "tpsl")
    is_market = _field(trig, "isMarket", bool)
    trigger_price = hlassets.price_ticks(ex, market, trig.get("triggerPx"))
    return PlaceTrigger(market, is_buy, 0 if child else size, trigger_price, tpsl, is_market,
                        0 if is_market else price, reduce_only, cloid)


@dataclass(frozen=True, slots=True)
class Refused:
    """An order of a Hyperliquid batch that its mapping refused (a price off the rules, an
    unknown asset): its slot in the batch answers that code and the others run, as
    Hyperliquid answers each order of a batch on its own."""

    code: Code
    message: str


def refused_result(ex: Exchange, signer: bytes, pubkey: bytes, a: Refused) -> ActionResult:
    return rejected(a.code, a.message)


agents.AGENT_ACTIONS.add(Refused)  # its slot fails whoever signed


def _order_or_refused(ex: Exchange, wire: Any) -> Any:
    try:
        return _order(ex, wire)
    except TxError as err:
        return Refused(err.code, err.message)


def _place(ex: Exchange, body: dict[str, Any]) -> Any:
    wires = _list(body, "orders")
    grouping = body.get("grouping", "na")
    if grouping == "na":
        orders: tuple[Any, ...] = tuple(_order_or_refused(ex, w) for w in wires)  # may hold triggers
        if all(type(o) is Refused for o in orders):
            raise TxError(orders[0].code, orders[0].message)  # nothing to run: the whole action is refused
        return Batch(orders)
    if grouping == "normalTpsl":
        parent = _order(ex, wires[0])
        if not isinstance(parent, PlaceOrder) or not 2 <= len(wires) <= 3:
            raise TxError(Code.MALFORMED, "normalTpsl is a limit order and its take-profit and/or stop-loss")
        return PlaceGroup(1, parent, tuple(_trigger_child(ex, w) for w in wires[1:]))
    if grouping == "positionTpsl":
        if len(wires) > 2:
            raise TxError(Code.MALFORMED, "positionTpsl is a take-profit and/or a stop-loss")
        return PlaceGroup(2, None, tuple(_trigger_child(ex, w) for w in wires))
    raise TxError(Code.MALFORMED, "grouping must be na, normalTpsl or positionTpsl")


def _trigger_child(ex: Exchange, wire: Any) -> PlaceTrigger:
    child = _order(ex, wire, child=True)
    if not isinstance(child, PlaceTrigger):
        raise TxError(Code.MALFORMED, "a TP/SL group's children are trigger orders")
    return child


def _cancels(ex: Exchange, body: dict[str, Any], by_cloid: bool) -> Batch:
    out = []
    for c in _list(body, "cancels"):
        if type(c) is not dict:
            raise TxError(Code.MALFORMED, "a cancel is an object")
        if by_cloid:
            out.append(Cancel(hlassets.market_of_asset(ex, c.get("asset")), None, _cloid(c.get("cloid"))))
        else:
            oid = c.get("o")
            if type(oid) is not int or not 0 <= oid < 1 << 63:
                raise TxError(Code.MALFORMED, "o must be an order id")
            out.append(Cancel(hlassets.market_of_asset(ex, c.get("a")), oid, None))
    return Batch(tuple(out))


def _modify(ex: Exchange, account: bytes, m: Any) -> list[Any]:
    if type(m) is not dict:
        raise TxError(Code.MALFORMED, "a modify is an object")
    ref = m.get("oid")
    oid, cloid = (ref, None) if type(ref) is int else (None, _cloid(ref))
    if oid is not None and not 0 <= oid < 1 << 63:
        raise TxError(Code.MALFORMED, "oid must be an order id")
    new = _order(ex, m.get("order"))
    market = new.market
    owner = isolated.route(ex, account, market) if ex.subs else account
    acct = ex.accounts.get(owner)
    if isinstance(new, PlaceTrigger):
        return [ModifyTrigger(market, oid, cloid, new.trigger_price, new.limit_price, new.size)]
    resting = None
    if acct is not None:
        try:
            resting = ex.find_order(acct, market, oid, cloid)
        except TxError:
            resting = None
    if resting is not None and lapse.lapsed(ex, resting, lapse.switches_due(ex)):
        resting = None  # gone (removed before the account acts): never a cancel and a new order
    if resting is None:  # the handler answers UNKNOWN_ORDER (or modifies nothing) with its usual code
        return [Modify(market, oid, cloid, new.price, new.size)]
    same = (resting.is_buy == new.is_buy and resting.tif == int(new.tif) and resting.reduce_only == new.reduce_only
            and (new.cloid is None or new.cloid == resting.cloid))
    if same:
        return [Modify(market, oid, cloid, new.price, new.size)]
    return [Cancel(market, resting.oid, None), new]


def _leverage(ex: Exchange, account: bytes, body: dict[str, Any]) -> Batch:
    market = hlassets.market_of_asset(ex, body.get("asset"))
    leverage = body.get("leverage")
    if type(leverage) is not int or not 1 <= leverage <= 1000:
        raise TxError(Code.LEVERAGE_OUT_OF_RANGE, "leverage is an integer 1..the market's max")
    want_isolated = not _field(body, "isCross", bool)
    steps: list[Any] = []
    if want_isolated != (isolated.route(ex, account, market) != account):
        steps.append(SetMarginMode(market, want_isolated))
    steps.append(UpdateLeverage(market, leverage))
    return Batch(tuple(steps))


def _usd(ex: Exchange, micro: Any, *, signed: bool = False) -> int:
    """Hyperliquid's integer USD amounts (``ntli``, ``usd``) are in 10^-6 USDC. Only a
    ``signed`` amount (``ntli``: margin in or out) may be negative; a transfer's is not."""
    if type(micro) is not int or abs(micro) > MAX_AMOUNT or (micro < 0 and not signed):
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "an amount is an integer of 10^-6 USDC")
    decimals = ex.genesis.assets[ex.collateral_asset].decimals
    scaled = micro * 10**decimals
    if scaled % 10**6:
        raise TxError(Code.BAD_DECIMAL, "the amount is finer than the collateral's smallest unit")
    return int(scaled // 10**6)


def _token(ex: Exchange, text: Any) -> int:
    """``"USDC:0x..."`` (spotMeta's name:tokenId) or a bare symbol -> asset id."""
    if type(text) is not str:
        raise TxError(Code.MALFORMED, "token must be NAME:tokenId")
    symbol = text.partition(":")[0]
    for a in ex.genesis.assets:
        if a.symbol == symbol:
            return int(a.asset_id)
    raise TxError(Code.UNKNOWN_ASSET, f"unknown token {text!r}")


def _approve_agent(body: dict[str, Any]) -> ApproveAgent:
    agent = _address(body.get("agentAddress"), "agentAddress")
    name = body.get("agentName") or ""
    if type(name) is not str:
        raise TxError(Code.MALFORMED, "agentName must be text")
    valid_until = 0
    if _VALID_UNTIL in name:
        name, _, until = name.partition(_VALID_UNTIL)
        if not until.isdigit() or not until.isascii() or int(until) > MAX_TIME_MS:
            raise TxError(Code.MALFORMED, "valid_until must be a time in ms")
        valid_until = int(until)
    name = name or "api"
    if len(name.encode()) > MAX_NAME_LEN or not name.isprintable():
        raise TxError(Code.MALFORMED, f"agentName must be printable text of at most {MAX_NAME_LEN} bytes")
    return ApproveAgent(agent, name, valid_until)


def _sub_transfer(ex: Exchange, body: dict[str, Any], master: bytes, asset: int, amount: int) -> Any:
    sub = _address(body.get("subAccountUser"), "subAccountUser")
    if _field(body, "isDeposit", bool):
        return Transfer(sub, asset, amount)
    return ActAs(sub, Transfer(master, asset, amount))


def _borrow_lend(ex: Exchange, body: dict[str, Any]) -> Any:
    """``{operation, token, amount}``. Lending here is a switch, not an amount: an account's
    balance of an asset is in the pool (earning) unless it turned lending off, so ``supply``
    and ``withdraw`` take ``amount: null`` (all of it); ``borrow`` needs an amount, ``repay``
    repays up to its amount (null: the whole debt)."""
    token = body.get("token")
    if type(token) is not int or not 0 <= token < len(ex.genesis.assets):
        raise TxError(Code.UNKNOWN_ASSET, "token must be a token index of spotMeta")
    operation = body.get("operation")
    amount = body.get("amount")
    if operation in ("supply", "withdraw"):
        if amount is not None:
            raise TxError(Code.MALFORMED, "supply and withdraw switch lending of the whole balance: amount null")
        return Lend(token, operation == "supply")
    if operation == "borrow":
        return Borrow(token, hlassets.asset_amount(ex, token, amount))
    if operation == "repay":
        return Repay(token, MAX_AMOUNT if amount is None else hlassets.asset_amount(ex, token, amount))
    raise TxError(Code.MALFORMED, "operation must be supply, withdraw, borrow or repay")


def acting_for(ex: Exchange, tx: SignedTx) -> bytes:
    """The account whose orders a modify looks at: the agent's master, if an agent signed."""
    agent = agents.live_agent(ex, tx.signer, tx.nonce) if ex.agents else None
    return tx.signer if agent is None else agent[0]


def resolve(ex: Exchange, tx: SignedTx) -> Any:
    """The native action ``tx``'s Hyperliquid action stands for (``act_as`` its vault when it
    names one). Raises TxError with the code a client gets back."""
    a: HlAction = tx.action
    body, kind = a.body, a.type
    account = acting_for(ex, tx)
    if a.vault is not None:
        account = a.vault
    native: Any
    if kind == "order":
        native = _place(ex, body)
    elif kind in ("cancel", "cancelByCloid"):
        native = _cancels(ex, body, kind == "cancelByCloid")
    elif kind == "modify":
        native = Batch(tuple(_modify(ex, account, body)))
    elif kind == "batchModify":
        native = Batch(tuple(x for m in _list(body, "modifies") for x in _modify(ex, account, m)))
    elif kind == "scheduleCancel":
        when = body.get("time")
        if when is not None and (type(when) is not int or not 0 <= when <= MAX_TIME_MS):
            raise TxError(Code.MALFORMED, "time must be a time in ms")
        native = ScheduleCancel(when)
    elif kind == "updateLeverage":
        native = _leverage(ex, account, body)
    elif kind == "updateIsolatedMargin":
        native = UpdateIsolatedMargin(hlassets.market_of_asset(ex, body.get("asset")), _usd(ex, body.get("ntli"), signed=True))
    elif kind == "createSubAccount":
        name = body.get("name")
        if type(name) is not str or not 0 < len(name.encode()) <= MAX_NAME_LEN or not name.isprintable():
            raise TxError(Code.MALFORMED, f"name must be printable text of 1..{MAX_NAME_LEN} bytes")
        native = CreateSubAccount(name)
    elif kind == "subAccountTransfer":
        native = _sub_transfer(ex, body, account, ex.collateral_asset, _usd(ex, body.get("usd")))
    elif kind == "subAccountSpotTransfer":
        asset = _token(ex, body.get("token"))
        native = _sub_transfer(ex, body, account, asset, hlassets.asset_amount(ex, asset, body.get("amount")))
    elif kind in ("usdSend", "withdraw3"):
        amount = hlassets.asset_amount(ex, ex.collateral_asset, body.get("amount"))
        to = _address(body.get("destination"), "destination")
        native = (Transfer(to, ex.collateral_asset, amount) if kind == "usdSend"
                  else Withdraw(ex.collateral_asset, amount, to))
    elif kind == "spotSend":
        asset = _token(ex, body.get("token"))
        native = Transfer(_address(body.get("destination"), "destination"), asset,
                          hlassets.asset_amount(ex, asset, body.get("amount")))
    elif kind == "approveAgent":
        native = _approve_agent(body)
    elif kind in ("noop", "usdClassTransfer"):
        native = NOOP
    elif kind == "borrowLend":
        native = _borrow_lend(ex, body)
    else:  # anything the decoder admits without a mapping
        raise TxError(Code.UNKNOWN_TX_TYPE, f"action {kind!r} is not supported")
    if a.vault is None:
        return native
    if isinstance(native, ActAs):  # a sub-account transfer acts for the sub itself: act_as cannot nest
        raise TxError(Code.MALFORMED, f"{kind} is signed by the master account, without vaultAddress")
    return ActAs(a.vault, native)
