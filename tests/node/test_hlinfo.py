"""Hyperliquid-compatible ``/info`` (node/hlinfo.py): shapes and hand-computed values.

BTC: tick $1 (tick_size 1_000_000 micro-USDC), lot 0.0001 BTC (10_000 sats, 8 decimals);
ETH: tick $0.1, lot 0.001 ETH. So 2_500 BTC lots are "0.25" and 60_000 ticks "60000".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import history, hlinfo
from node.blockstore import BlockStore
from state.keys import address_to_text
from state.tx import Cancel, PlaceOrder, Tif
from state.views import margin_summary
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH_PERP, USDC, Chain, key
from tests.node.indexing import index_block

A, B, C = key(40), key(41), key(42)
CLOID = bytes(range(16))


def user(k: Any) -> str:
    return address_to_text(k.address)


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    for k in (A, B, C):
        c.fund(k, USDC, 1_000_000 * 10**6)  # $1M
        c.fund(k, BTC, 10 * 10**8)
    return c


class IndexedChain:
    """A harness chain indexed into a real block store as node/execution.py does it
    (results, order outcomes, cloids, history and candles)."""

    def __init__(self, tmp: Path) -> None:
        self.c = Chain()
        self.store = BlockStore(str(tmp / "blocks"))
        self.candles = history.CandleBook(self.store.db.get)
        for k in (A, B):
            self.c.fund(k, USDC, 1_000_000 * 10**6)
            self.c.fund(k, BTC, 10 * 10**8)

    def block(self, *txs: bytes) -> None:
        r = self.c.block(*txs)
        index_block(self.store, self.candles, self.c.ex, r, txs, self.c.ex.time_ms)

    def order(self, k: Any, market: int, is_buy: bool, price: int, size: int, tif: Tif = Tif.GTC,
              cloid: bytes | None = None) -> int:
        self.block(self.c.sign(k, PlaceOrder(market, is_buy, price, size, tif, False, cloid)))
        oid = self.c.last.receipts[0].results[0].oid
        assert oid is not None
        return oid

    def info(self, body: dict[str, Any]) -> Any:
        return hlinfo.answer(self.c.ex, body, self.store)


# ---------------------------------------------------------------------------- numbers
def test_dec_is_exact_without_trailing_zeros() -> None:
    assert hlinfo.dec(250_000, 6) == "0.25"
    assert hlinfo.dec(60_000_000_000, 6) == "60000"
    assert hlinfo.dec(-1_500, 3) == "-1.5"
    assert hlinfo.dec(-5, 3) == "-0.005"
    assert hlinfo.dec(0, 6) == "0"
    assert hlinfo.dec(7, 0) == "7"


def test_ratio_rounds_half_away_from_zero() -> None:
    assert hlinfo.ratio(1, 3, 4) == "0.3333"
    assert hlinfo.ratio(2, 3, 4) == "0.6667"
    assert hlinfo.ratio(-2, 3, 4) == "-0.6667"
    assert hlinfo.ratio(5, 0) == "0"


@given(st.integers(-10**30, 10**30), st.integers(0, 18))
def test_dec_round_trips_through_decimal(value: int, places: int) -> None:
    from decimal import Decimal

    assert Decimal(hlinfo.dec(value, places)) == Decimal(f"{value}E-{places}")


def test_sz_decimals_from_lot_size() -> None:
    assert hlinfo.sz_decimals(10_000, 8) == 4  # 0.0001 BTC
    assert hlinfo.sz_decimals(100_000, 8) == 3  # 0.001 ETH
    assert hlinfo.sz_decimals(25_000, 8) == 5  # 0.00025
    assert hlinfo.sz_decimals(100_000_000, 8) == 0  # whole units


# ---------------------------------------------------------------------------- market data
def test_meta_lists_perps_by_base_asset(chain: Chain) -> None:
    assert hlinfo.answer(chain.ex, {"type": "meta"}) == {"universe": [
        {"name": "BTC", "szDecimals": 4, "maxLeverage": 20, "onlyIsolated": False},
        {"name": "ETH", "szDecimals": 3, "maxLeverage": 20, "onlyIsolated": False},
    ]}


def test_spot_meta_tokens_are_assets_and_pairs_name_them(chain: Chain) -> None:
    sm = hlinfo.answer(chain.ex, {"type": "spotMeta"})
    assert [(t["name"], t["index"], t["weiDecimals"], t["szDecimals"]) for t in sm["tokens"]] == [
        ("USDC", 0, 6, 6), ("BTC", 1, 8, 4), ("ETH", 2, 8, 3)]
    assert sm["universe"] == [{"name": "@0", "tokens": [1, 0], "index": 0, "isCanonical": True},
                              {"name": "@1", "tokens": [2, 0], "index": 1, "isCanonical": True}]


def test_all_mids_falls_back_to_oracle_and_uses_the_book_mid(chain: Chain) -> None:
    mids = hlinfo.answer(chain.ex, {"type": "allMids"})
    assert mids == {"BTC": "60000", "ETH": "3000", "@0": "60000", "@1": "3000"}
    chain.order(A, BTC_PERP, True, 60_000, 10)
    chain.order(B, BTC_PERP, False, 60_001, 10)
    assert hlinfo.all_mids(chain.ex)["BTC"] == "60000.5"  # half a $1 tick


def test_l2_book_levels_in_human_units(chain: Chain) -> None:
    chain.order(A, BTC_PERP, True, 60_000, 2_500)  # 0.25 BTC at $60,000
    chain.order(B, BTC_PERP, True, 60_000, 100)
    chain.order(B, BTC_PERP, True, 59_999, 10)
    chain.order(C, BTC_PERP, False, 60_002, 5)
    book = hlinfo.answer(chain.ex, {"type": "l2Book", "coin": "BTC"})
    assert book["coin"] == "BTC" and book["time"] == chain.ex.time_ms
    bids, asks = book["levels"]
    assert bids == [{"px": "60000", "sz": "0.26", "n": 2}, {"px": "59999", "sz": "0.001", "n": 1}]
    assert asks == [{"px": "60002", "sz": "0.0005", "n": 1}]


def test_l2_book_of_a_spot_pair_by_at_index_or_symbol(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, True, 60_000, 2_500)
    book = hlinfo.answer(chain.ex, {"type": "l2Book", "coin": "@0"})
    assert book["levels"] == [[{"px": "60000", "sz": "0.25", "n": 1}], []]
    assert hlinfo.l2_book(chain.ex, "BTC/USDC")["levels"] == book["levels"]
    assert hlinfo.l2_book(chain.ex, "BTC-PERP")["levels"] == [[], []]  # a perp by its symbol


def test_l2_book_eth_tick_is_a_dime(chain: Chain) -> None:
    chain.order(A, ETH_PERP, True, 29_995, 1_500)  # 29_995 x $0.1, 1_500 x 0.001 ETH
    (bid,) = hlinfo.l2_book(chain.ex, "ETH")["levels"][0]
    assert bid == {"px": "2999.5", "sz": "1.5", "n": 1}


def test_meta_and_asset_ctxs(chain: Chain) -> None:
    chain.order(A, BTC_PERP, True, 60_000, 1_000)
    chain.order(B, BTC_PERP, False, 60_000, 1_000)  # 0.1 BTC open interest
    chain.order(A, BTC_PERP, True, 59_990, 10)
    chain.order(B, BTC_PERP, False, 60_010, 10)
    meta, ctxs = hlinfo.answer(chain.ex, {"type": "metaAndAssetCtxs"})
    assert meta == hlinfo.meta(chain.ex) and len(ctxs) == 2
    btc = ctxs[0]
    assert set(btc) == {"funding", "openInterest", "markPx", "oraclePx", "midPx", "dayNtlVlm", "premium",
                        "prevDayPx", "impactPxs"}
    assert btc["openInterest"] == "0.1"
    assert btc["oraclePx"] == "60000"
    assert btc["midPx"] == "60000" and btc["impactPxs"] == ["59990", "60010"]
    assert ctxs[1]["openInterest"] == "0" and ctxs[1]["midPx"] is None


# ---------------------------------------------------------------------------- accounts
def test_clearinghouse_state_of_a_long(chain: Chain) -> None:
    chain.order(A, BTC_PERP, True, 60_000, 1_000)
    chain.order(B, BTC_PERP, False, 60_000, 1_000)  # A long 0.1 BTC at $60,000 = $6,000
    ch = hlinfo.answer(chain.ex, {"type": "clearinghouseState", "user": user(A)})
    (ap,) = ch["assetPositions"]
    assert ap["type"] == "oneWay"
    p = ap["position"]
    mark = chain.ex.mstate[BTC_PERP].mark or 60_000_000_000
    value = 1_000 * 10_000 * mark // 10**8  # micro-USDC
    assert p["coin"] == "BTC" and p["szi"] == "0.1" and p["entryPx"] == "60000"
    assert p["positionValue"] == hlinfo.dec(value, 6)
    assert p["unrealizedPnl"] == hlinfo.dec(value - 6_000_000_000, 6)
    assert p["leverage"] == {"type": "cross", "value": 20} and p["maxLeverage"] == 20
    assert p["marginUsed"] == hlinfo.dec(value // 20, 6)  # $300 at $60,000
    assert set(p["cumFunding"]) == {"allTime", "sinceOpen", "sinceChange"}
    s = margin_summary(chain.ex, A.address)
    ms = ch["marginSummary"]
    assert ms == ch["crossMarginSummary"]
    assert ms["accountValue"] == hlinfo.dec(s["equity"], 6)
    assert ms["totalNtlPos"] == hlinfo.dec(value, 6)
    assert ms["totalRawUsd"] == hlinfo.dec(s["equity"] - value, 6)
    assert ms["totalMarginUsed"] == hlinfo.dec(s["initial"], 6)
    assert ch["crossMaintenanceMarginUsed"] == hlinfo.dec(s["maintenance"], 6)
    assert ch["withdrawable"] == hlinfo.dec(s["free_collateral"], 6)
    short = hlinfo.clearinghouse_state(chain.ex, B.address)["assetPositions"][0]["position"]
    assert short["szi"] == "-0.1" and short["entryPx"] == "60000"


def test_clearinghouse_state_of_an_unknown_user_is_empty(chain: Chain) -> None:
    ch = hlinfo.answer(chain.ex, {"type": "clearinghouseState", "user": user(key(99))})
    assert ch["assetPositions"] == [] and ch["marginSummary"]["accountValue"] == "0"
    assert ch["withdrawable"] == "0"


def test_open_orders_and_frontend_open_orders(chain: Chain) -> None:
    first = chain.order(A, BTC_PERP, True, 60_000, 2_500).oid
    second = chain.order(A, BTC_SPOT, False, 61_000, 100).oid
    chain.order(B, BTC_PERP, False, 60_000, 500)  # first is partly filled: 0.2 of 0.25 left
    oo = hlinfo.answer(chain.ex, {"type": "openOrders", "user": user(A)})
    assert oo == [
        {"coin": "@0", "limitPx": "61000", "oid": second, "side": "A", "sz": "0.01", "timestamp": 0,
         "origSz": "0.01"},
        {"coin": "BTC", "limitPx": "60000", "oid": first, "side": "B", "sz": "0.2", "timestamp": 0,
         "origSz": "0.25"},
    ]
    fo = hlinfo.answer(chain.ex, {"type": "frontendOpenOrders", "user": user(A)})
    assert fo[1]["orderType"] == "Limit" and fo[1]["tif"] == "Gtc" and fo[1]["reduceOnly"] is False
    assert fo[1]["isTrigger"] is False and fo[1]["triggerPx"] == "0"
    assert hlinfo.answer(chain.ex, {"type": "openOrders", "user": user(key(99))}) == []


def test_open_order_shows_its_cloid(chain: Chain) -> None:
    chain.run(A, PlaceOrder(BTC_PERP, True, 59_000, 10, Tif.ALO, False, CLOID))
    (o,) = hlinfo.open_orders(chain.ex, A.address, frontend=True)
    assert o["cloid"] == "0x" + CLOID.hex() and o["tif"] == "Alo"


# ---------------------------------------------------------------------------- indexed data
def test_user_fills_from_the_history_index(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    maker = ix.order(A, BTC_PERP, False, 60_000, 2_500)
    taker = ix.order(B, BTC_PERP, True, 60_000, 1_000, Tif.IOC)
    (bf,) = ix.info({"type": "userFills", "user": user(B)})
    assert (bf["coin"], bf["px"], bf["sz"], bf["side"], bf["crossed"], bf["oid"]) == \
        ("BTC", "60000", "0.1", "B", True, taker)
    assert bf["time"] == ix.c.ex.time_ms and bf["feeToken"] == "USDC"
    (af,) = ix.info({"type": "userFills", "user": user(A)})
    assert (af["side"], af["crossed"], af["oid"]) == ("A", False, maker)
    # fee rates: maker 100 ppm, taker 350 ppm of $6,000
    assert (af["fee"], bf["fee"]) == ("0.6", "2.1")
    assert af["tid"] == bf["tid"]
    later = ix.info({"type": "userFillsByTime", "user": user(B), "startTime": ix.c.ex.time_ms + 1})
    assert later == []


def test_candle_snapshot_from_the_candle_index(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    ix.order(A, BTC_PERP, False, 60_000, 100)
    ix.order(A, BTC_PERP, False, 60_100, 100)
    ix.order(B, BTC_PERP, True, 60_100, 150, Tif.IOC)  # trades 0.01 at 60000 then 0.005 at 60100
    (c,) = ix.info({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1h", "startTime": 0}})
    t = ix.c.ex.time_ms - ix.c.ex.time_ms % 3_600_000
    assert c == {"t": t, "T": t + 3_599_999, "s": "BTC", "i": "1h", "o": "60000", "c": "60100", "h": "60100",
                 "l": "60000", "v": "0.015", "n": 2}


def test_order_status_open_filled_and_by_cloid(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    oid = ix.order(A, BTC_PERP, False, 60_000, 100, cloid=CLOID)
    st = ix.info({"type": "orderStatus", "user": user(A), "oid": oid})
    assert st["status"] == "order" and st["order"]["status"] == "open"
    assert st["order"]["order"]["limitPx"] == "60000" and st["order"]["order"]["side"] == "A"
    ix.order(B, BTC_PERP, True, 60_000, 100, Tif.IOC)
    st = ix.info({"type": "orderStatus", "user": user(A), "oid": "0x" + CLOID.hex()})
    assert st["order"]["status"] == "filled" and st["order"]["order"]["oid"] == oid
    assert ix.info({"type": "orderStatus", "user": user(B), "oid": oid}) == {"status": "unknownOid"}
    assert ix.info({"type": "orderStatus", "user": user(A), "oid": 999}) == {"status": "unknownOid"}


def test_order_status_cancelled(tmp_path: Path) -> None:
    ix = IndexedChain(tmp_path)
    oid = ix.order(A, BTC_PERP, True, 59_000, 10)
    ix.block(ix.c.sign(A, Cancel(BTC_PERP, oid, None)))
    assert ix.info({"type": "orderStatus", "user": user(A), "oid": oid})["order"]["status"] == "canceled"


def test_exchange_status_and_rate_limit(chain: Chain) -> None:
    assert hlinfo.answer(chain.ex, {"type": "exchangeStatus"}) == {"time": chain.ex.time_ms,
                                                                    "specialStatuses": None}
    rl = hlinfo.answer(chain.ex, {"type": "userRateLimit", "user": user(A)})
    assert set(rl) == {"cumVlm", "nRequestsUsed", "nRequestsCap"}


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("body", [
    {"type": "nope"}, {}, [], "meta", {"type": 5},
    {"type": "l2Book"}, {"type": "l2Book", "coin": "DOGE"},
    {"type": "clearinghouseState"}, {"type": "clearinghouseState", "user": "0x12"},
    {"type": "openOrders", "user": 7},
    {"type": "candleSnapshot"}, {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "2m", "startTime": 0}},
    {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": -1}},
    {"type": "orderStatus", "user": "0x" + "00" * 20, "oid": "zz"},
    {"type": "orderStatus", "user": "0x" + "00" * 20, "oid": True},
])
def test_malformed_requests_are_info_errors(chain: Chain, body: Any) -> None:
    with pytest.raises(hlinfo.InfoError):
        hlinfo.answer(chain.ex, body)


def test_funding_is_the_predicted_hourly_rate(chain: Chain) -> None:
    # no premium sampled: the interest term alone, 12_500 ppb per 1h interval = 0.00125%/h
    assert hlinfo.asset_ctxs(chain.ex)[0]["funding"] == "0.0000125"
    st = chain.ex.mstate[BTC_PERP]
    st.premium_sum, st.premium_count = 2_000_000, 2  # a view test: premium 1_000_000 ppb = 0.1%
    ctx = hlinfo.asset_ctxs(chain.ex)[0]
    # rate = p + clamp(interest - p, +-500_000) = 1_000_000 - 500_000
    assert (ctx["premium"], ctx["funding"]) == ("0.001", "0.0005")


def test_spot_clearinghouse_state_balances_and_hold(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, False, 61_000, 2_500)  # asks 0.25 BTC: held
    sc = hlinfo.answer(chain.ex, {"type": "spotClearinghouseState", "user": user(A)})
    assert sc["balances"] == [
        {"coin": "USDC", "token": 0, "hold": "0", "total": "1000000", "entryNtl": "0"},
        {"coin": "BTC", "token": 1, "hold": "0.25", "total": "10", "entryNtl": "0"},
    ]
    assert hlinfo.spot_clearinghouse_state(chain.ex, key(99).address) == {"balances": []}


def test_spot_meta_and_asset_ctxs(chain: Chain) -> None:
    chain.order(A, BTC_SPOT, True, 59_999, 10)
    chain.order(B, BTC_SPOT, False, 60_002, 10)
    sm, ctxs = hlinfo.answer(chain.ex, {"type": "spotMetaAndAssetCtxs"})
    assert sm == hlinfo.spot_meta(chain.ex)
    assert ctxs[0]["coin"] == "@0" and ctxs[0]["markPx"] == "60000" and ctxs[0]["midPx"] == "60000.5"
    assert ctxs[1]["midPx"] is None


# ---------------------------------------------------------------------------- over HTTP
def test_info_route_answers_json_and_400s(tmp_path: Path) -> None:
    """The real handler (node/rpc.py ``hl_info``) behind the real error middleware."""
    import asyncio
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from node.readbudget import ReadBudget
    from node.rpc import RpcServer
    from node.rpcerrors import errors_middleware

    ix = IndexedChain(tmp_path)
    ix.order(A, BTC_PERP, True, 60_000, 2_500)
    real = RpcServer.__new__(RpcServer)
    real.rt = SimpleNamespace(blocks=ix.store, sm=ix.c.sm, genesis=ix.c.ex.genesis)
    real.read_budget = ReadBudget()

    async def go() -> None:
        app = web.Application(middlewares=[errors_middleware])
        app.router.add_post("/info", real.hl_info)
        async with TestClient(TestServer(app)) as client:
            r = await client.post("/info", json={"type": "l2Book", "coin": "BTC"})
            assert r.status == 200
            assert (await r.json())["levels"][0] == [{"px": "60000", "sz": "0.25", "n": 1}]
            r = await client.post("/info", json={"type": "meta"})
            assert (await r.json())["universe"][0]["name"] == "BTC"
            for body in ({"type": "bogus"}, {"type": "l2Book", "coin": "XYZ"}):
                r = await client.post("/info", json=body)
                assert r.status == 400
                assert (await r.json())["error"]["name"] == "MALFORMED"
            r = await client.post("/info", data=b"{not json")
            assert r.status == 400 and (await r.json())["error"]["name"] == "MALFORMED"

    asyncio.run(go())


# ---------------------------------------------------------------------------- the SDK itself
def test_hyperliquid_sdk_info_reads_the_chain(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """hyperliquid-python-sdk's ``Info`` over node/hlinfo.py (its HTTP post replaced by the
    pure answer): its start-up metadata parsing and the read calls a trader makes. Skipped
    where the SDK is not installed (it is not a dependency of the node)."""
    api = pytest.importorskip("hyperliquid.api")
    info_mod = pytest.importorskip("hyperliquid.info")
    monkeypatch.setattr(api.API, "post", lambda self, path, payload=None: hlinfo.answer(chain.ex, payload))
    chain.order(A, BTC_PERP, True, 60_000, 2_500)
    chain.order(B, BTC_PERP, False, 60_000, 1_000)
    info = info_mod.Info("http://127.0.0.1:1", skip_ws=True)
    assert info.name_to_asset("BTC") == 0 and info.name_to_asset("ETH") == 1
    assert info.name_to_asset("BTC/USDC") == 10_000
    assert info.name_to_coin["BTC/USDC"] == "@0"
    assert info.l2_snapshot("BTC")["levels"][0] == [{"px": "60000", "sz": "0.15", "n": 1}]
    assert info.all_mids()["BTC"] == "60000"
    pos = info.user_state(user(A))["assetPositions"][0]["position"]
    assert (pos["coin"], pos["szi"], pos["entryPx"]) == ("BTC", "0.1", "60000")
    (o,) = info.open_orders(user(A))
    assert (o["coin"], o["sz"], o["side"]) == ("BTC", "0.15", "B")
    assert info.query_order_by_oid(user(A), o["oid"])["order"]["status"] == "open"


def test_frontend_open_orders_list_waiting_triggers(chain: Chain) -> None:
    from state.tx import PlaceTrigger

    chain.order(A, BTC_PERP, True, 60_000, 100)
    chain.order(B, BTC_PERP, False, 60_000, 100)  # A long 0.01 BTC
    limit = chain.order(A, BTC_PERP, True, 59_000, 10).oid
    chain.run(A, PlaceTrigger(BTC_PERP, False, 100, 58_000, 1, True, 0, True, None))  # stop market, sell
    chain.run(A, PlaceTrigger(BTC_PERP, False, 0, 62_000, 0, False, 61_900, True, CLOID))  # position TP, limit
    fo = hlinfo.answer(chain.ex, {"type": "frontendOpenOrders", "user": user(A)})
    tp, sl, lim = fo
    assert lim["oid"] == limit and lim["isTrigger"] is False
    assert (sl["orderType"], sl["isTrigger"], sl["triggerPx"], sl["limitPx"], sl["sz"], sl["side"]) == \
        ("Stop Market", True, "58000", "58000", "0.01", "A")
    assert sl["triggerCondition"] == "Price below 58000" and sl["reduceOnly"] is True
    assert (tp["orderType"], tp["limitPx"], tp["triggerCondition"], tp["isPositionTpsl"], tp["sz"]) == \
        ("Take Profit Limit", "61900", "Price above 62000", True, "0")
    assert tp["cloid"] == "0x" + CLOID.hex()
    assert [o["oid"] for o in hlinfo.open_orders(chain.ex, A.address)] == [limit]  # plain listing: the book


# ---------------------------------------------------------------------------- properties
_JUNK = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=50)
                     | st.sampled_from(["BTC", "@0", "@9", "ETH-PERP", "1m", "0x" + "11" * 20, "0x" + "00" * 16]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
                     max_leaves=6)
_FIELDS = ["coin", "user", "oid", "req", "startTime", "endTime"]


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)  # recursive junk generates slowly on a loaded machine
@given(st.sampled_from([*hlinfo.HANDLERS, "nope"]),
       st.dictionaries(st.sampled_from(_FIELDS), _JUNK, max_size=4),
       st.dictionaries(st.sampled_from(["coin", "interval", "startTime", "endTime"]), _JUNK, max_size=4))
def test_any_request_answers_or_is_an_info_error(kind: str, fields: dict[str, Any], req: dict[str, Any]) -> None:
    """Whatever a client sends, ``answer`` returns JSON-ready data or raises InfoError
    (the route's 400), never anything else (a 500)."""
    import json

    body = {"type": kind, **fields}
    if "req" in fields and isinstance(fields["req"], dict):
        body["req"] = req
    try:
        out = hlinfo.answer(_PROP_CHAIN.ex, body)
    except hlinfo.InfoError:
        return
    json.dumps(out)


@given(st.integers(0, 10_000_000), st.integers(0, 2**40))
def test_px_and_sz_text_are_exact(ticks: int, lots: int) -> None:
    from decimal import Decimal

    for m in (BTC_SPOT, BTC_PERP, ETH_PERP):
        u = hlinfo.Units(_PROP_CHAIN.ex, m)
        assert Decimal(u.px(ticks)) * 10**u.quote_dec == ticks * u.tick_size
        assert Decimal(u.sz(lots)) * 10**u.base_dec == lots * u.lot_size


def _prop_chain() -> Chain:
    c = Chain()
    c.fund(A, USDC, 1_000_000 * 10**6)
    c.fund(A, BTC, 10 * 10**8)
    c.fund(B, USDC, 1_000_000 * 10**6)
    c.order(A, BTC_PERP, True, 60_000, 100)
    c.order(B, BTC_PERP, False, 60_000, 50)
    c.order(A, BTC_SPOT, False, 61_000, 10)
    return c


_PROP_CHAIN = _prop_chain()


def test_an_isolated_position_is_the_users_in_every_answer(tmp_path: Path) -> None:
    """A market traded isolated lives in the user's isolated account (state/isolated.py);
    Hyperliquid shows it as the user's own position (leverage type "isolated"), order and
    fill, so a client that isolated a market through ``updateLeverage`` sees what it holds."""
    from state.isolated import isolated_address
    from state.tx import SetMarginMode, UpdateIsolatedMargin, UpdateLeverage

    ix = IndexedChain(tmp_path)
    for action in (SetMarginMode(BTC_PERP, True), UpdateLeverage(BTC_PERP, 5),
                   UpdateIsolatedMargin(BTC_PERP, 2_000 * 10**6)):
        ix.block(ix.c.sign(A, action))
        assert ix.c.last.receipts[0].code == 0
    iso = isolated_address(A.address, BTC_PERP)
    ix.order(B, BTC_PERP, False, 60_000, 1_000)
    ix.order(A, BTC_PERP, True, 60_000, 1_000, Tif.IOC)  # A long 0.1 BTC, isolated
    resting = ix.order(A, BTC_PERP, True, 59_000, 500)
    ch = ix.info({"type": "clearinghouseState", "user": user(A)})
    (ap,) = ch["assetPositions"]
    p = ap["position"]
    assert p["coin"] == "BTC" and p["szi"] == "0.1"
    s = margin_summary(ix.c.ex, iso)
    assert p["leverage"] == {"type": "isolated", "value": 5,
                             "rawUsd": hlinfo.dec(s["equity"] - s["positions"][0]["notional"], 6)}
    assert p["marginUsed"] == hlinfo.dec(s["equity"], 6)
    own = margin_summary(ix.c.ex, A.address)
    assert ch["crossMarginSummary"]["accountValue"] == hlinfo.dec(own["equity"], 6)
    assert ch["marginSummary"]["accountValue"] == hlinfo.dec(own["equity"] + s["equity"], 6)
    assert [o["oid"] for o in ix.info({"type": "openOrders", "user": user(A)})] == [resting]
    (fill,) = ix.info({"type": "userFills", "user": user(A)})
    assert fill["dir"] == "Open Long" and fill["sz"] == "0.1"
    assert ix.info({"type": "orderStatus", "user": user(A), "oid": resting})["status"] == "order"
    assert ix.info({"type": "subAccounts", "user": user(A)}) is None  # not a sub-account to the user
