"""Funds leaving an account: withdrawals' checks, and transfers between accounts.

A transfer is a withdrawal that lands on the chain instead of leaving it: the sender must
hold the amount as free balance (idle funds first, then supply; never a new debt) and stay
above initial margin afterwards (``risk.must_afford_withdrawal``), and the receiver is
credited as by a deposit (a debt of the asset is repaid first, the rest is supplied to the
pool unless the receiver turned lending off). The chain's custody does not move, so the
conservation of every asset is untouched; the receiver's balance is bounded by custody
(at most 2^62) like every balance. The receiver needs no account beforehand.
"""

from __future__ import annotations

from state import risk
from state.account import Account
from state.errors import Code, TxError
from state.events import Transferred
from state.exchange import Exchange
from state.receipts import OK, ActionResult
from state.tx import Transfer


def must_valid_withdrawal(ex: Exchange, signer: bytes, asset: int, amount: int, what: str = "withdraw") -> Account:
    """Every check of a withdrawal (also the RPC dry run ``views.can_withdraw``); ``what``
    names the action in the messages (a transfer is checked as a withdrawal, and its sender
    must read "transfer")."""
    ex.must_asset(asset)
    if amount <= 0:  # also a mapped Hyperliquid action's: only the native decoder checks the sign
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, f"{what} amount must be positive")
    acct = ex.holder(signer, Code.INSUFFICIENT_BALANCE, "account has no funds")
    risk.must_afford_withdrawal(ex, acct, asset, amount, what)
    return acct


def handle_transfer(ex: Exchange, signer: bytes, pubkey: bytes, a: Transfer) -> ActionResult:
    if a.to == signer:
        raise TxError(Code.MALFORMED, "a transfer to the sending account itself")
    if a.to in (ex.fee_account, ex.insurance_account):
        raise TxError(Code.UNAUTHORIZED, "the fee account and the insurance fund do not take transfers")
    sender = must_valid_withdrawal(ex, signer, a.asset, a.amount, "transfer")
    sender.credit(a.asset, -a.amount)  # idle first, then supply (checked); marks the account
    ex.account(a.to).credit(a.asset, a.amount)  # repays a debt first, then supplies; marks it
    ex.emit(Transferred("transfer", signer, a.to, a.asset, a.amount))
    return ActionResult(OK, status="ok")
