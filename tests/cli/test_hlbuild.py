"""node/wallet/hlbuild.py: every native action the CLI signs with a secp256k1 key becomes a
Hyperliquid action that the chain (state.hlexec.resolve) maps back onto that same native
action, signed by the key's Ethereum address; what has no equivalent is refused by code."""

from __future__ import annotations

from typing import Any

import pytest

from node.wallet import hlbuild, txbuild
from node.wallet.units import Catalog
from state import hlexec
from state.agents import sub_account_address
from state.eip712 import EthKey
from state.errors import Code
from state.tx import (
    ActAs,
    ApproveAgent,
    Batch,
    Borrow,
    CancelAll,
    CreateSubAccount,
    Deposit,
    Lend,
    Repay,
    ScheduleCancel,
    SetMarginMode,
    Transfer,
    UpdateIsolatedMargin,
    UpdateLeverage,
    decode_tx,
)
from state.views import open_orders_view
from tests.harness import BRIDGE, BTC, BTC_PERP, USDC, Chain

KEY = EthKey(bytes([9]) * 32)
OTHER = EthKey(bytes([10]) * 32)
NONCE = 1_700_000_100_000


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    for asset, amount in ((USDC, 1_000_000 * 10**6), (BTC, 10 * 10**8)):
        assert c.run(BRIDGE, Deposit(KEY.address, asset, amount)).code == Code.OK
    return c


def _ctx(chain: Chain, isolated: frozenset[int] = frozenset()) -> hlbuild.HlContext:
    return hlbuild.HlContext(Catalog.from_genesis(chain.genesis), KEY.address, isolated)


def _resolved(chain: Chain, native: Any, **ctx: Any) -> Any:
    hc = _ctx(chain, **ctx)
    req = hlbuild.build(hc, native, NONCE)
    tx = decode_tx(hlbuild.sign(KEY, req, NONCE))
    assert tx.signer == KEY.address and tx.nonce == NONCE
    return hlexec.resolve(chain.ex, tx)


def _batch(items: tuple[Any, ...]) -> Batch:
    """A Batch as hlexec builds one (its items may be triggers or account actions)."""
    return Batch(items)


def _cat(chain: Chain) -> Catalog:
    return Catalog.from_genesis(chain.genesis)


def test_orders_resolve_to_the_native_order(chain: Chain) -> None:
    cat = _cat(chain)
    spot = txbuild.order_action(cat, "ETH/USDC", "buy", "1.5", "2999.9", tif="alo", cloid="my-order")
    assert _resolved(chain, spot) == _batch((spot,))
    perp = txbuild.order_action(cat, "BTC-PERP", "sell", "0.25", "61000", tif="ioc", reduce_only=True)
    assert _resolved(chain, perp) == _batch((perp,))
    row = {"id": BTC_PERP, "reference_price": 60_000 * 10**6, "oracle_price": 60_000 * 10**6,
           "price_band_ppm": 100_000, "max_price_ticks": 10**9}
    market = txbuild.market_order_action(cat, row, "buy", "0.1", "0.05")
    assert _resolved(chain, market) == _batch((market,))
    two = Batch((spot, perp))
    assert _resolved(chain, two) == two


def test_triggers_and_groups_resolve_to_the_native_ones(chain: Chain) -> None:
    cat = _cat(chain)
    stop = txbuild.trigger_action(cat, "BTC-PERP", "sell", "0.1", "57000", "sl", reduce_only=True)
    assert _resolved(chain, stop) == _batch((stop,))
    tp = txbuild.trigger_action(cat, "BTC/USDC", "sell", "0.5", "66000", "tp", limit="65900", cloid="tp-1")
    assert _resolved(chain, tp) == _batch((tp,))
    parent = txbuild.order_action(cat, "BTC-PERP", "buy", "0.1", "60000")
    bracket = txbuild.bracket_action(cat, parent, "66000", "57000")
    assert _resolved(chain, bracket) == bracket
    position = txbuild.position_tpsl_action(cat, "BTC-PERP", "sell", "66000", None)
    assert _resolved(chain, position) == position


def test_cancels_resolve_to_the_native_cancels(chain: Chain) -> None:
    cat = _cat(chain)
    by_oid = txbuild.cancel_action(cat, "BTC/USDC", oid=42)
    assert _resolved(chain, by_oid) == _batch((by_oid,))
    by_cloid = txbuild.cancel_action(cat, "ETH-PERP", cloid="my-order")
    assert _resolved(chain, by_cloid) == _batch((by_cloid,))
    with pytest.raises(hlbuild.HlBuildError, match="all by oid or all by cloid"):
        hlbuild.build(_ctx(chain), Batch((by_oid, by_cloid)), NONCE)


def test_account_actions_resolve_to_the_native_ones(chain: Chain) -> None:
    cat = _cat(chain)
    lev = txbuild.leverage_action(cat, "BTC-PERP", "5")
    assert _resolved(chain, lev) == _batch((lev,))
    assert _resolved(chain, UpdateIsolatedMargin(BTC_PERP, 500 * 10**6)) == UpdateIsolatedMargin(BTC_PERP, 500 * 10**6)
    for native in (ScheduleCancel(NONCE + 60_000), ScheduleCancel(None), CreateSubAccount("hedge"),
                   txbuild.lend_action(cat, "USDC", False), txbuild.lend_action(cat, "BTC", True),
                   txbuild.borrow_action(cat, "USDC", "1000"), txbuild.repay_action(cat, "USDC", "12.5")):
        assert _resolved(chain, native) == native, native
    assert isinstance(txbuild.lend_action(cat, "USDC", True), Lend)
    assert isinstance(txbuild.borrow_action(cat, "USDC", "1"), Borrow)
    assert isinstance(txbuild.repay_action(cat, "USDC", "1"), Repay)


def test_leverage_restates_an_isolated_market_as_isolated(chain: Chain) -> None:
    req = hlbuild.build(_ctx(chain, isolated=frozenset({BTC_PERP})), UpdateLeverage(BTC_PERP, 3), NONCE)
    assert req.action["isCross"] is False
    # on a chain where BTC-PERP is cross, isCross false switches it first, as Hyperliquid does
    assert _resolved(chain, UpdateLeverage(BTC_PERP, 3), isolated=frozenset({BTC_PERP})) == \
        _batch((SetMarginMode(BTC_PERP, True), UpdateLeverage(BTC_PERP, 3)))


def test_user_signed_actions_resolve_to_the_native_ones(chain: Chain) -> None:
    cat = _cat(chain)
    usd = txbuild.transfer_action(cat, OTHER.address, "USDC", "250.5")
    assert _resolved(chain, usd) == usd
    btc = txbuild.transfer_action(cat, OTHER.address, "BTC", "0.01")
    assert _resolved(chain, btc) == btc
    out = txbuild.withdraw_action(cat, "USDC", "100", OTHER.address)
    assert _resolved(chain, out) == out
    agent = ApproveAgent(OTHER.address, "bot", 0)
    assert _resolved(chain, agent) == agent
    timed = ApproveAgent(OTHER.address, "bot", NONCE + 86_400_000)
    assert _resolved(chain, timed) == timed
    req = hlbuild.build(_ctx(chain), usd, NONCE)
    assert req.user_signed and req.action["time"] == NONCE and req.action["type"] == "usdSend"


def test_sub_account_actions_take_the_vault_or_a_sub_account_transfer(chain: Chain) -> None:
    cat = _cat(chain)
    sub = sub_account_address(KEY.address, "hedge")
    order = txbuild.order_action(cat, "BTC-PERP", "sell", "0.1", "60000")
    req = hlbuild.build(_ctx(chain), ActAs(sub, order), NONCE)
    assert req.vault == sub and not req.user_signed
    assert _resolved(chain, ActAs(sub, order)) == ActAs(sub, _batch((order,)))
    back = ActAs(sub, Transfer(KEY.address, USDC, 500 * 10**6))
    assert _resolved(chain, back) == back
    spot_back = ActAs(sub, Transfer(KEY.address, BTC, 10**6))
    assert _resolved(chain, spot_back) == spot_back
    with pytest.raises(hlbuild.HlBuildError, match="only to its master"):
        hlbuild.build(_ctx(chain), ActAs(sub, Transfer(OTHER.address, USDC, 1)), NONCE)


def test_signed_order_lands_on_chain_as_the_key_s_order(chain: Chain) -> None:
    cat = _cat(chain)
    order = txbuild.order_action(cat, "BTC/USDC", "sell", "0.25", "61000")
    raw = hlbuild.sign(KEY, hlbuild.build(_ctx(chain), order, chain.time + 1), chain.time + 1)
    r = chain.block(raw).receipts[0]
    assert r.code == Code.OK and r.results[0].code == Code.OK
    (resting,) = open_orders_view(chain.ex, KEY.address)
    assert resting["market"] == 0 and resting["size"] == 2_500  # 0.25 BTC in lots of 0.0001


@pytest.mark.parametrize("native", [
    Deposit(bytes(20), USDC, 1), CancelAll(None), SetMarginMode(BTC_PERP, True), UpdateLeverage(BTC_PERP, 0),
])
def test_actions_without_an_equivalent_are_refused_by_code(chain: Chain, native: Any) -> None:
    with pytest.raises(hlbuild.HlBuildError) as err:
        hlbuild.build(_ctx(chain), native, NONCE)
    assert err.value.code == hlbuild.NO_EQUIVALENT and str(err.value).startswith(hlbuild.NO_EQUIVALENT)


def test_good_til_time_and_finer_prices_are_refused_before_signing(chain: Chain) -> None:
    cat = _cat(chain)
    gtt = txbuild.order_action(cat, "BTC/USDC", "buy", "0.1", "60000", expires_at_ms=NONCE)
    with pytest.raises(hlbuild.HlBuildError, match="good-til-time"):
        hlbuild.build(_ctx(chain), gtt, NONCE)
    fine = txbuild.order_action(cat, "ETH/USDC", "buy", "1", "12345.6")  # six significant figures
    with pytest.raises(hlbuild.HlBuildError) as err:
        hlbuild.build(_ctx(chain), fine, NONCE)
    assert err.value.code == "BAD_DECIMAL"
    with pytest.raises(hlbuild.HlBuildError, match="expiresAfter"):
        hlbuild.sign(KEY, hlbuild.build(_ctx(chain), Transfer(OTHER.address, USDC, 1), NONCE), NONCE,
                     expires_after_ms=NONCE + 1)


def test_modifies_restate_the_open_order_and_resolve_to_the_native_modify(chain: Chain) -> None:
    cat = _cat(chain)
    placed = txbuild.order_action(cat, "BTC/USDC", "sell", "0.25", "61000", cloid="ask-1")
    raw = hlbuild.sign(KEY, hlbuild.build(_ctx(chain), placed, chain.time + 1), chain.time + 1)
    oid = chain.block(raw).receipts[0].results[0].oid
    resting = (hlbuild.RestingOrder(placed.market, oid, False, placed.tif, False, placed.cloid),)
    hc = hlbuild.HlContext(cat, KEY.address, frozenset(), resting)
    by_oid = txbuild.modify_action(cat, "BTC/USDC", "61500", "0.2", oid=oid)
    by_cloid = txbuild.modify_action(cat, "BTC/USDC", "61200", "0.1", cloid="ask-1")
    for native, expected in ((by_oid, by_oid), (Batch((by_oid, by_cloid)), Batch((by_oid, by_cloid)))):
        req = hlbuild.build(hc, native, NONCE)
        assert req.action["type"] == ("modify" if native is by_oid else "batchModify")
        tx = decode_tx(hlbuild.sign(KEY, req, NONCE))
        assert hlexec.resolve(chain.ex, tx) == (_batch((expected,)) if native is by_oid else expected)
    with pytest.raises(hlbuild.HlBuildError) as err:
        hlbuild.build(_ctx(chain), by_oid, NONCE)  # the open order unknown: nothing to restate
    assert err.value.code == "UNKNOWN_ORDER"
