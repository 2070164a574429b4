"""The lending transactions: ``lend`` (auto-lend on/off), ``borrow``, ``repay``.

See state/lending.py for the balance model. Each handler checks everything first; the
``must_valid_*`` functions are also the RPC dry runs (``views.can_borrow``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from state import risk
from state.errors import Code, TxError
from state.events import Borrowed, Repaid
from state.receipts import ActionResult
from state.tx import Borrow, Lend, Repay
from state.units import MAX_AMOUNT

if TYPE_CHECKING:
    from state.account import Account
    from state.exchange import Exchange



def handle_lend(ex: Exchange, signer: bytes, pubkey: bytes, a: Lend) -> ActionResult:
    ex.must_asset(a.asset)
    acct = ex.accounts.get(signer)
    is_on = acct is None or a.asset not in acct.lend_off
    if a.enabled == is_on:
        return ActionResult(Code.OK, status="ok", message="unchanged")
    if a.enabled:
        assert acct is not None
        acct.set_auto_lend(a.asset, True)
        ex.pools.move_idle_to_pool(acct, a.asset)  # repays debt first, then supplies
        return ActionResult(Code.OK, status="ok")
    acct = ex.account(signer)
    supplied = ex.pools.supplied(acct, a.asset)
    ex.pools[a.asset].must_lend_out(ex.pools.supply_drop(acct, a.asset, supplied), what="withdrawal")
    acct.set_auto_lend(a.asset, False)
    ex.pools.move_supply_to_idle(acct, a.asset)
    return ActionResult(Code.OK, status="ok")


def must_valid_borrow(ex: Exchange, signer: bytes, asset: int, amount: int) -> Account:
    ex.must_asset(asset)
    if amount == 0 or amount > MAX_AMOUNT:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "borrow amount must be in 1..2^62")
    acct = ex.holder(signer, Code.INSUFFICIENT_MARGIN, "the account holds nothing to borrow against")
    risk.must_afford_borrow(ex, acct, asset, amount)
    return acct


def handle_borrow(ex: Exchange, signer: bytes, pubkey: bytes, a: Borrow) -> ActionResult:
    acct = must_valid_borrow(ex, signer, a.asset, a.amount)
    ex.pools.draw_to_idle(acct, a.asset, a.amount)
    ex.emit(Borrowed("borrow", signer, a.asset, a.amount))
    return ActionResult(Code.OK, status="ok")


def handle_repay(ex: Exchange, signer: bytes, pubkey: bytes, a: Repay) -> ActionResult:
    ex.must_asset(a.asset)
    if a.amount == 0:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "repay amount must be positive")
    acct = ex.accounts.get(signer)
    debt = ex.pools.debt(acct, a.asset) if acct is not None else 0
    if acct is None or debt == 0:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "no debt in this asset")
    idle = acct.idle.get(a.asset, 0)
    if idle == 0:
        raise TxError(Code.INSUFFICIENT_BALANCE, "nothing idle to repay from (credits in the pool repay by themselves)")
    amount = min(a.amount, idle, debt)
    ex.pools.move_idle_to_pool(acct, a.asset, amount)
    ex.emit(Repaid("repay", signer, a.asset, amount))
    return ActionResult(Code.OK, status="ok", filled=amount)
