"""``update_leverage``: the leverage an account allows itself on one derivative market.

Every derivative market has a ``max_leverage`` in genesis, and the initial requirement is
never below the leverage floor (``risk.leverage_floor``: each position's largest reach at
the mark over the leverage). An account may lower its own leverage on a market (as on
Hyperliquid, ``updateLeverage``), which raises that floor and so the margin its orders
need; it can never raise it above the market's maximum, and it never lowers the portfolio
requirement. Lowering it with a position open must leave the account above initial margin.
On a market the account trades isolated, the setting is its isolated account's (whose
position it margins), and it goes when the market returns to cross.
"""

from __future__ import annotations

from state import isolated, risk
from state.errors import Code, TxError
from state.exchange import Exchange
from state.receipts import OK, ActionResult
from state.tx import UpdateLeverage


def handle_update_leverage(ex: Exchange, signer: bytes, pubkey: bytes, a: UpdateLeverage) -> ActionResult:
    market = ex.market(a.market)
    if not ex.minfo[a.market].is_perp:
        raise TxError(Code.LEVERAGE_OUT_OF_RANGE, f"{market.symbol} is a spot market: leverage applies to derivatives")
    if a.leverage > market.max_leverage:
        raise TxError(Code.LEVERAGE_OUT_OF_RANGE, f"leverage {a.leverage} above {market.symbol}'s maximum "
                                                  f"{market.max_leverage}")
    # an isolated market's position lives in its isolated account: the setting goes there
    acct = ex.account(isolated.route(ex, signer, a.market) if ex.subs else signer)
    chosen = None if a.leverage in (0, market.max_leverage) else a.leverage
    before = acct.leverage.get(a.market)
    if chosen == before:
        return ActionResult(OK, status="ok", message="unchanged")
    if chosen is not None and (before is None or chosen < before):
        saved = acct.leverage  # assess with the new setting, then put the old one back: checks change nothing
        acct.leverage = {**saved, a.market: chosen}
        after = risk.assess(ex, acct, True, orders=True)
        acct.leverage = saved
        if after.equity < after.requirement:
            raise TxError(Code.INSUFFICIENT_MARGIN, f"leverage {a.leverage} leaves initial margin shortfall "
                                                    f"{after.requirement - after.equity}")
    acct.set_leverage(a.market, chosen)
    return ActionResult(OK, status="ok")
