"""Isolated margin: a derivative position that carries its own margin.

An account switches a perp (or future) market to isolated (``set_margin_mode``) while it has
no position or order there. From then on its orders on that market go to the market's
isolated account: a sub-account of it at a derived address (``isolated_address``), kept
in the sub-account registry under a reserved name and not counted against the sub-account
limit. The owner moves USDC in and out of it with ``update_isolated_margin`` (in: checked
as a withdrawal from the account; out: checked as a withdrawal from the isolated account,
so what stays covers its initial margin).

Why a sub-account: the portfolio engine, the liquidation waterfall and the write tracking
already work per account, so isolation needs no new risk code. The isolated account's
requirement is the scenario requirement of its one position (and the leverage floor) on
its own margin; its funding and PnL settle into its own USDC at every funding boundary
(interest-bearing, like any position); its liquidation takes only its position and margin
(book, backstop, ADL, the insurance fund) and never reads the owner's other collateral,
so a loss beyond its margin is the insurance fund's, never the owner's cross account's.
Switching back to cross, with no position or order left, returns its balances to the
owner.
"""

from __future__ import annotations

import hashlib
from typing import Final

from state.account import ISOLATED_PREFIX
from state.errors import Code, TxError
from state.exchange import Exchange
from state.receipts import OK, ActionResult
from state.transfers import must_valid_withdrawal
from state.tx import SetMarginMode, UpdateIsolatedMargin

ISOLATED_DOMAIN: Final = b"bookchain/isolated\x00"


def isolated_address(owner: bytes, market: int) -> bytes:
    return hashlib.sha256(ISOLATED_DOMAIN + owner + market.to_bytes(2, "big")).digest()[:20]


def route(ex: Exchange, account: bytes, market: int) -> bytes:
    """Where an order of ``account`` on ``market`` goes: its isolated account there, if the
    market is isolated for it, else the account itself."""
    name = f"{ISOLATED_PREFIX}{market}"
    subs = ex.subs
    for address in ex.subs_of.get(account, ()):  # a handful at most: no hashing per order
        if subs[address][1] == name:
            return address
    return account


def isolated_markets(ex: Exchange, owner: bytes) -> list[tuple[int, bytes]]:
    """(market, isolated account) of each market ``owner`` trades isolated, by market."""
    out = []
    for address in ex.subs_of.get(owner, ()):
        name = ex.subs[address][1]
        if name.startswith(ISOLATED_PREFIX):
            out.append((int(name[len(ISOLATED_PREFIX):]), address))
    return sorted(out)


def _must_be_flat(ex: Exchange, address: bytes, market: int, who: str) -> None:
    acct = ex.accounts.get(address)
    if acct is None:
        return
    pos = acct.positions.get(market)
    if (pos is not None and pos.size) or any(m == market for m in acct.open_orders.values()) \
            or any(m == market for m in acct.triggers.values()):
        raise TxError(Code.UNAUTHORIZED, f"{who} still has a position or open orders on market {market}")


def handle_set_margin_mode(ex: Exchange, signer: bytes, pubkey: bytes, a: SetMarginMode) -> ActionResult:
    market = ex.market(a.market)
    if not ex.minfo[a.market].is_perp:
        raise TxError(Code.LEVERAGE_OUT_OF_RANGE, f"{market.symbol} is a spot market: margin modes apply to derivatives")
    if signer in ex.subs:
        raise TxError(Code.UNAUTHORIZED, "a sub-account's positions cannot be isolated further")
    iso = isolated_address(signer, a.market)
    current = iso in ex.subs
    if a.isolated == current:
        return ActionResult(OK, status="ok", message="unchanged")
    if a.isolated:
        _must_be_flat(ex, signer, a.market, "the account")
        ex.subs[iso] = [signer, f"{ISOLATED_PREFIX}{a.market}"]
        ex.subs_of.setdefault(signer, set()).add(iso)
        ex.touch_sub(iso)
        return ActionResult(OK, status="ok", message=iso.hex())
    acct = ex.accounts.get(iso)
    if acct is not None:
        # it trades one market (state/agents.py refuses act_as into it), but its balances go
        # back only once it holds nothing on any market: they are the margin of what it holds
        if any(p.size for p in acct.positions.values()) or acct.open_orders or acct.triggers:
            raise TxError(Code.UNAUTHORIZED, "the isolated account still holds a position or orders: close them first")
        if any(v < 0 for v in acct.balances.values()):
            raise TxError(Code.INSUFFICIENT_BALANCE, "the isolated account owes: add margin to repay it first")
        owner = ex.account(signer)
        for asset, amount in sorted(acct.balances.items()):
            acct.credit(asset, -amount)
            owner.credit(asset, amount)
        if acct.leverage:  # the isolated position's leverage goes with it
            acct.set_leverage(a.market, None)
    del ex.subs[iso]
    ex.subs_of[signer].discard(iso)
    ex.touch_sub(iso)
    return ActionResult(OK, status="ok")


def handle_update_isolated_margin(ex: Exchange, signer: bytes, pubkey: bytes, a: UpdateIsolatedMargin) -> ActionResult:
    ex.market(a.market)
    iso = isolated_address(signer, a.market)
    if iso not in ex.subs or ex.subs[iso][0] != signer:
        raise TxError(Code.UNAUTHORIZED, f"market {a.market} is not isolated for this account (set_margin_mode first)")
    usdc = ex.collateral_asset
    if a.amount == 0:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "the margin change must not be zero")
    src, dst = (signer, iso) if a.amount > 0 else (iso, signer)
    amount = abs(a.amount)
    sender = must_valid_withdrawal(ex, src, usdc, amount)
    sender.credit(usdc, -amount)
    ex.account(dst).credit(usdc, amount)
    return ActionResult(OK, status="ok")
