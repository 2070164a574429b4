"""State transition per action kind, and the per-transaction envelope (nonce, receipt).

Read this file top to bottom to know what every transaction does. Each handler checks
everything before it changes anything, so a rejection (a TxError) leaves the state as it
was; the envelope then records the nonce only if at least one action took effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from state import (
    agents,
    hlexec,
    isolated,
    lapse,
    lendtx,
    leverage,
    lifetimes,
    liquidation,
    matching,
    nonces,
    oracle,
    transfers,
    triggers,
)
from state.account import Account
from state.errors import Code, TxError
from state.events import Deposited, Withdrawn
from state.exchange import Exchange
from state.receipts import OK, ActionResult, Receipt, rejected
from state.tx import (
    ACTION_NAMES,
    SCHEME_HL,
    ActAs,
    ApproveAgent,
    Batch,
    Borrow,
    Cancel,
    CancelAll,
    CreateSubAccount,
    Deposit,
    Lend,
    Modify,
    ModifyTrigger,
    OraclePrices,
    PlaceGroup,
    PlaceOrder,
    PlaceTrigger,
    Repay,
    RevokeAgent,
    ScheduleCancel,
    SetMarginMode,
    SetUnwindOrder,
    SignedTx,
    Tif,
    Transfer,
    UpdateIsolatedMargin,
    UpdateLeverage,
    Withdraw,
)
from state.units import MAX_AMOUNT


def handle_deposit(ex: Exchange, signer: bytes, pubkey: bytes, a: Deposit) -> ActionResult:
    if pubkey != ex.genesis.bridge_authority:
        raise TxError(Code.UNAUTHORIZED, "only the bridge authority may deposit")
    ex.must_asset(a.asset)
    existing = ex.accounts.get(a.to)
    if a.amount == 0 or (existing.balance(a.asset) if existing else 0) + a.amount > MAX_AMOUNT:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "deposit amount must be positive and keep the balance below 2^62")
    if ex.pools[a.asset].custody + a.amount > MAX_AMOUNT:
        # custody bounds every balance of the asset (one grows past its deposits only by
        # what others lose), so it keeps balances, pool totals and sums inside 2^62
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "the chain's custody of this asset would exceed 2^62")
    acct = ex.account(a.to)
    acct.credit(a.asset, a.amount)  # repays a debt first, then supplies (or stays idle); marks the account
    ex.pools[a.asset].custody += a.amount
    ex.emit(Deposited("deposit", a.to, a.asset, a.amount))
    return ActionResult(Code.OK, status="ok")


def handle_withdraw(ex: Exchange, signer: bytes, pubkey: bytes, a: Withdraw) -> ActionResult:
    acct = transfers.must_valid_withdrawal(ex, signer, a.asset, a.amount)
    acct.credit(a.asset, -a.amount)  # idle first, then supply: never a borrow (checked); marks the account
    ex.pools[a.asset].custody -= a.amount
    ex.emit(Withdrawn("withdraw", signer, a.asset, a.amount, a.destination))
    return ActionResult(Code.OK, status="ok")


def handle_order(ex: Exchange, acct: Account, a: PlaceOrder) -> ActionResult:
    return matching.place_order(ex, acct, a)


def handle_cancel(ex: Exchange, acct: Account, a: Cancel) -> ActionResult:
    trig = triggers.find_trigger(ex, acct, a.market, a.oid, a.cloid) if acct.triggers else None
    if trig is not None:
        triggers.cancel_trigger(ex, trig, "cancelled")
        return ActionResult(OK, oid=trig.oid, status="cancelled", resting=0)
    order = ex.find_order(acct, a.market, a.oid, a.cloid)
    matching.cancel_order(ex, order, "cancelled")
    return ActionResult(OK, oid=order.oid, status="cancelled", resting=0)


def handle_cancel_all(ex: Exchange, acct: Account, a: CancelAll) -> ActionResult:
    if a.market is not None:
        ex.market(a.market)
    oids = sorted(oid for oid, m in acct.open_orders.items() if a.market is None or m == a.market)
    for oid in oids:
        matching.cancel_order(ex, ex.books[acct.open_orders[oid]].orders[oid], "cancelled")
    n = len(oids) + (triggers.cancel_account_triggers(ex, acct, "cancelled", a.market) if acct.triggers else 0)
    return ActionResult(Code.OK, status="ok", filled=0, resting=0, message=f"{n} cancelled")


def handle_modify(ex: Exchange, acct: Account, a: Modify) -> ActionResult:
    if acct.triggers and triggers.find_trigger(ex, acct, a.market, a.oid, a.cloid) is not None:
        raise TxError(Code.UNKNOWN_ORDER, "that is a trigger order: change it with modify_trigger")
    order = ex.find_order(acct, a.market, a.oid, a.cloid)
    if lapse.lapsed(ex, order, lapse.switches_due(ex)):
        # (apply_tx removed the account's lapsed orders before it acted; a lapsed order is
        # gone, as an expired one is on Hyperliquid, never modified)
        raise TxError(Code.UNKNOWN_ORDER, "no such open order for this account in this market (it has lapsed)")
    if a.price == order.price and 0 < a.size < order.size:
        market = ex.markets[order.market]
        if not order.reduce_only and order.price * a.size * market.tick_value < market.min_notional:
            raise TxError(Code.BELOW_MIN_NOTIONAL, "the smaller order would be below the minimum notional")
        matching.shrink_order(ex, order, a.size)
        return ActionResult(Code.OK, oid=order.oid, status="resting", resting=a.size)
    replacement = PlaceOrder(order.market, order.is_buy, a.price, a.size, Tif(order.tif), order.reduce_only, order.cloid,
                             order.expires_at or None)  # keeps the order's expiry
    return matching.place_order(ex, acct, replacement, replacing=order)


OrderHandler = Callable[[Exchange, Account, Any], ActionResult]
ORDER_HANDLERS: Final[dict[type, OrderHandler]] = {
    PlaceOrder: handle_order,
    Cancel: handle_cancel,
    CancelAll: handle_cancel_all,
    Modify: handle_modify,
    PlaceTrigger: triggers.handle_place_trigger,
    ModifyTrigger: triggers.handle_modify_trigger,
}

AccountHandler = Callable[[Exchange, bytes, bytes, Any], ActionResult]
ACCOUNT_HANDLERS: Final[dict[type, AccountHandler]] = {
    Deposit: handle_deposit,
    Withdraw: handle_withdraw,
    Lend: lendtx.handle_lend,
    Borrow: lendtx.handle_borrow,
    Repay: lendtx.handle_repay,
    OraclePrices: oracle.handle_oracle,
    SetUnwindOrder: liquidation.handle_set_unwind_order,
    Transfer: transfers.handle_transfer,
    UpdateLeverage: leverage.handle_update_leverage,
    ApproveAgent: agents.handle_approve_agent,
    RevokeAgent: agents.handle_revoke_agent,
    CreateSubAccount: agents.handle_create_sub_account,
    SetMarginMode: isolated.handle_set_margin_mode,
    UpdateIsolatedMargin: isolated.handle_update_isolated_margin,
    ScheduleCancel: lifetimes.handle_schedule_cancel,
    hlexec.Refused: hlexec.refused_result,
}


# Final aliases of the interpreted module's names used per transaction: compiled code reads
# a Final from a C static, any other module-level name from the module's dict on every use.
_ACTION_NAMES: Final = ACTION_NAMES
_BATCH: Final = Batch


def _run_one(ex: Exchange, signer: bytes, pubkey: bytes, action: Any) -> ActionResult:
    try:
        kind = type(action)
        handler = ORDER_HANDLERS.get(kind)
        if handler is not None:
            if ex.subs and signer in ex.subs_of:  # an order on an isolated market goes to its account
                market = getattr(action, "market", None)
                if market is not None:
                    return handler(ex, ex.account(isolated.route(ex, signer, market)), action)
                for _m, iso in isolated.isolated_markets(ex, signer):  # cancel_all: theirs too
                    handler(ex, ex.account(iso), action)
            return handler(ex, ex.account(signer), action)
        account_handler = ACCOUNT_HANDLERS.get(kind)
        if account_handler is None:  # never reached from a decoded native tx; a mapped one must not halt the chain
            raise TxError(Code.MALFORMED, f"{kind.__name__} cannot run here")
        return account_handler(ex, signer, pubkey, action)
    except TxError as err:
        return rejected(err.code, err.message)
    finally:  # an idle credit beyond what the pool may pay is lent before the next action
        ex.pools.settle_idle()


def apply_tx(ex: Exchange, tx: SignedTx) -> Receipt:
    """Apply one signature-checked transaction at the exchange's current block time.
    (``tx``'s fields are read once: its class is interpreted, see matching.must_valid_order.)"""
    signer, nonce, action, tx_hash = tx.signer, tx.nonce, tx.action, tx.hash
    hl = tx.scheme == SCHEME_HL
    kind = "hl:" + action.type if hl else _ACTION_NAMES.get(type(action)) or type(action).__name__.lower()
    kept = ex.nonces.get(signer)
    if hl and kept is None and signer not in ex.accounts and signer not in ex.agents:
        # any signature recovers some address: one the chain has never seen (a tampered
        # action, another chain's signature) is refused and leaves nothing behind
        return Receipt(tx_hash, Code.UNKNOWN_ACCOUNT, "the signer has no account on this chain", signer, kind)
    try:
        lifetimes.must_not_expired(tx, ex.time_ms)  # before the nonce: an expired tx consumes nothing
        nonces.must_accept(kept or [], nonce, ex.time_ms, ex.genesis.nonce_past_window_ms, ex.genesis.nonce_future_window_ms)
    except TxError as err:
        return Receipt(tx_hash, err.code, err.message, signer, kind)
    # an included transaction with a valid signature and a fresh nonce uses the nonce,
    # whatever its actions do (as on Ethereum): otherwise anyone holding the bytes of a
    # rejected transaction could replay it once it would succeed
    ex.nonces[signer] = nonces.recorded(kept, nonce)  # a new array, never one admission may hold
    ex.touch_nonces(signer)
    account = signer
    if hl:  # a Hyperliquid action stands for a native one (state/hlexec.py)
        try:
            action = hlexec.resolve(ex, tx)
        except TxError as err:
            return Receipt(tx_hash, err.code, err.message, signer, kind)
    if ex.agents or ex.subs or type(action) is ActAs:  # who the transaction acts for (state/agents.py)
        try:
            account, action, _ = agents.acting_account(ex, tx, action)
        except TxError as err:
            return Receipt(tx_hash, err.code, err.message, signer, kind)
    if lapse.switches_due(ex):  # its due dead-man switch, not yet run by the sweep, runs before it acts
        try:
            lifetimes.must_run_due_switch(ex, account)
        except TxError as err:
            return Receipt(tx_hash, err.code, err.message, signer, kind)
    if lapse.expiries_due(ex):  # so do its expired orders the sweep has not taken (state/lifetimes.py)
        try:
            lifetimes.must_clear_expired(ex, account)
        except TxError as err:
            return Receipt(tx_hash, err.code, err.message, signer, kind)
    if isinstance(action, _BATCH):
        if len(action.actions) > ex.genesis.max_batch_actions:
            return Receipt(tx_hash, Code.BATCH_TOO_LARGE, f"at most {ex.genesis.max_batch_actions} actions", signer, kind)
        results = tuple(_run_one(ex, account, tx.pubkey, a) for a in action.actions)
    elif isinstance(action, PlaceGroup):
        try:
            owner = isolated.route(ex, account, action.market) if ex.subs else account
            results = triggers.handle_place_group(ex, ex.account(owner), action)
        except TxError as err:
            results = (rejected(err.code, err.message),)
        ex.pools.settle_idle()
    else:
        results = (_run_one(ex, account, tx.pubkey, action),)
    if not results:  # Hyperliquid's noop: the nonce is used, nothing else happens
        return Receipt(tx_hash, OK, "", signer, kind)
    for r in results:
        if r.code == OK:
            return Receipt(tx_hash, OK, "", signer, kind, results)
    acct = ex.accounts.get(account)
    if acct is not None and acct.is_empty() and account not in ex.touched_accounts():
        del ex.accounts[account]  # a rejected first contact leaves no account behind
    first = results[0]
    return Receipt(tx_hash, first.code, first.message, signer, kind, results)
