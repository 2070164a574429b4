"""The rest of Hyperliquid's ``/info`` (node/hlinfo.py): fills with their position context,
order timestamps, historical orders, funding, ledger updates, sub-accounts, roles; and
ccxt's hyperliquid class reading a chain through them.

BTC-PERP: tick $1, lot 0.0001 BTC, tick_value 100 micro-USDC per lot per tick (a lot of
0.0001 BTC moving $1 is $0.0001). So 1_000 lots closed $1,000 above entry is $100.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node import hlinfo
from node.blockstore import BlockStore
from state.agents import sub_account_address
from state.events import FundingSettled
from state.keys import address_to_text
from state.tx import ApproveAgent, Cancel, CreateSubAccount, PlaceOrder, Tif
from tests.harness import BTC, BTC_PERP, BTC_SPOT, USDC, Chain, key
from tests.node.indexing import Books, index_block

A, B = key(70), key(71)
HOUR = 3_600_000


def user(k: Any) -> str:
    return address_to_text(k.address)


class Indexed:
    def __init__(self, tmp: Path) -> None:
        self.c = Chain()
        self.store = BlockStore(str(tmp / "blocks"))
        self.books = Books(self.store)
        for k in (A, B):
            self.fund(k)

    def fund(self, k: Any) -> None:
        from state.tx import Deposit
        from tests.harness import BRIDGE

        self.block(self.c.sign(BRIDGE, Deposit(k.address, USDC, 1_000_000 * 10**6)))
        self.block(self.c.sign(BRIDGE, Deposit(k.address, BTC, 10 * 10**8)))

    def block(self, *txs: bytes, at: int | None = None) -> Any:
        if at is not None:
            self.c.time = at - 1000
        r = self.c.block(*txs)
        index_block(self.store, self.books.candles, self.c.ex, r, txs, self.c.ex.time_ms, self.books)
        return r

    def order(self, k: Any, market: int, is_buy: bool, price: int, size: int, tif: Tif = Tif.GTC,
              cloid: bytes | None = None, at: int | None = None) -> int:
        r = self.block(self.c.sign(k, PlaceOrder(market, is_buy, price, size, tif, False, cloid)), at=at)
        oid = r.receipts[0].results[0].oid
        assert oid is not None, r.receipts[0]
        return int(oid)

    def info(self, body: dict[str, Any]) -> Any:
        # through JSON, as a client sees it
        return json.loads(json.dumps(hlinfo.answer(self.c.ex, body, self.store)))


def trade(ix: Indexed, maker: Any, taker: Any, maker_buys: bool, price: int, size: int) -> bytes:
    """maker rests, taker crosses with an IOC; returns the taker's tx hash."""
    ix.order(maker, BTC_PERP, maker_buys, price, size)
    r = ix.block(ix.c.sign(taker, PlaceOrder(BTC_PERP, not maker_buys, price, size, Tif.IOC, False, None)))
    return bytes(r.receipts[0].tx_hash)


# ---------------------------------------------------------------------------- fills
def test_fills_carry_direction_start_position_closed_pnl_and_hash(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    h1 = trade(ix, B, A, False, 60_000, 2_500)  # A buys 0.25 from B
    t1 = ix.c.ex.time_ms
    trade(ix, B, A, True, 61_000, 1_000)  # A sells 0.1, $1,000 above its entry
    h3 = trade(ix, B, A, True, 61_000, 2_000)  # A sells 0.2 of its 0.15: flips short
    fills = ix.info({"type": "userFills", "user": user(A)})  # newest first
    got = [(f["dir"], f["startPosition"], f["closedPnl"], f["side"]) for f in fills]
    assert got == [("Long > Short", "0.15", "150", "A"), ("Close Long", "0.25", "100", "A"),
                   ("Open Long", "0", "0", "B")]
    assert fills[2]["hash"] == "0x" + h1.hex() and fills[0]["hash"] == "0x" + h3.hex()
    assert fills[2]["time"] == t1 and fills[2]["crossed"] is True
    b_fills = ix.info({"type": "userFills", "user": user(B)})
    assert [(f["dir"], f["startPosition"], f["closedPnl"]) for f in b_fills] == [
        ("Short > Long", "-0.15", "-150"), ("Close Short", "-0.25", "-100"), ("Open Short", "0", "0")]
    assert b_fills[0]["tid"] == fills[0]["tid"] and b_fills[0]["crossed"] is False
    assert b_fills[0]["hash"] == fills[0]["hash"]  # one transaction made the trade


def test_spot_fills_say_buy_and_sell(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    ix.order(B, BTC_SPOT, False, 60_000, 100)
    ix.block(ix.c.sign(A, PlaceOrder(BTC_SPOT, True, 60_000, 100, Tif.IOC, False, None)))
    (fa,) = ix.info({"type": "userFills", "user": user(A)})
    (fb,) = ix.info({"type": "userFills", "user": user(B)})
    assert (fa["dir"], fb["dir"], fa["coin"], fa["closedPnl"]) == ("Buy", "Sell", "@0", "0")


def test_fill_book_resumes_after_a_restart(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    trade(ix, B, A, False, 60_000, 2_500)
    ix.books = Books(ix.store)  # a restart: positions are read back from the store
    trade(ix, B, A, True, 61_000, 1_000)
    latest = ix.info({"type": "userFills", "user": user(A)})[0]
    assert (latest["dir"], latest["startPosition"], latest["closedPnl"]) == ("Close Long", "0.25", "100")


# ---------------------------------------------------------------------------- orders
def test_open_orders_show_the_placing_blocks_time(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    oid = ix.order(A, BTC_PERP, True, 59_000, 100)
    placed = ix.c.ex.time_ms
    ix.block()
    (o,) = ix.info({"type": "openOrders", "user": user(A)})
    assert o["oid"] == oid and o["timestamp"] == placed
    (fo,) = ix.info({"type": "frontendOpenOrders", "user": user(A)})
    assert fo["timestamp"] == placed
    st = ix.info({"type": "orderStatus", "user": user(A), "oid": oid})
    assert st["order"]["order"]["timestamp"] == placed


def test_historical_orders_open_filled_and_cancelled(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    cloid = bytes(range(16))
    filled = ix.order(B, BTC_PERP, False, 60_000, 100, cloid=cloid)
    t_filled = ix.c.ex.time_ms
    ix.block(ix.c.sign(A, PlaceOrder(BTC_PERP, True, 60_000, 100, Tif.IOC, False, None)))
    t_fill = ix.c.ex.time_ms
    cancelled = ix.order(B, BTC_PERP, True, 58_000, 300)
    ix.block(ix.c.sign(B, Cancel(BTC_PERP, cancelled, None)))
    t_cancel = ix.c.ex.time_ms
    live = ix.order(B, BTC_PERP, True, 57_000, 200)
    rows = ix.info({"type": "historicalOrders", "user": user(B)})
    assert [(r["order"]["oid"], r["status"]) for r in rows] == [(live, "open"), (cancelled, "canceled"),
                                                                 (filled, "filled")]
    f = rows[2]
    assert f["statusTimestamp"] == t_fill and f["order"]["timestamp"] == t_filled
    assert (f["order"]["side"], f["order"]["limitPx"], f["order"]["origSz"], f["order"]["sz"]) == \
        ("A", "60000", "0.01", "0")
    assert f["order"]["cloid"] == "0x" + cloid.hex() and f["order"]["tif"] == "Gtc"
    assert f["order"]["orderType"] == "Limit" and f["order"]["isTrigger"] is False
    assert rows[1]["statusTimestamp"] == t_cancel and rows[1]["order"]["origSz"] == "0.03"
    # the IOC taker filled whole in its block: its order is known from the transaction
    a_rows = ix.info({"type": "historicalOrders", "user": user(A)})
    assert [(r["status"], r["order"]["limitPx"], r["order"]["tif"]) for r in a_rows] == [("filled", "60000", "Ioc")]
    st = ix.info({"type": "orderStatus", "user": user(B), "oid": filled})
    assert st["order"]["status"] == "filled" and st["order"]["statusTimestamp"] == t_fill
    assert st["order"]["order"]["timestamp"] == t_filled and st["order"]["order"]["origSz"] == "0.01"


# ---------------------------------------------------------------------------- funding
def test_user_funding_and_funding_history(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    trade(ix, B, A, False, 60_000, 2_500)  # A long 0.25, B short 0.25
    t0 = ix.c.ex.time_ms
    boundary = ix.c.genesis.genesis_time_ms + HOUR * ((t0 - ix.c.genesis.genesis_time_ms) // HOUR + 1)
    r = ix.block(at=boundary + 10)
    settled = [e for _, e in r.events if isinstance(e, FundingSettled) and e.market == BTC_PERP]
    (ev,) = settled
    history = ix.info({"type": "fundingHistory", "coin": "BTC", "startTime": 0})
    assert history[-1]["time"] == boundary + 10 and history[-1]["coin"] == "BTC"
    assert history[-1]["fundingRate"] == hlinfo.dec(ev.rate_ppb, 9)
    assert history[-1]["premium"] == hlinfo.dec(ev.rate_ppb - ix.c.genesis.risk.funding_interest_ppb, 9)
    assert ix.info({"type": "fundingHistory", "coin": "BTC", "startTime": boundary + 11}) == []
    (fa,) = ix.info({"type": "userFunding", "user": user(A), "startTime": t0})
    (fb,) = ix.info({"type": "userFunding", "user": user(B), "startTime": t0})
    assert fa["delta"]["type"] == "funding" and fa["delta"]["coin"] == "BTC"
    assert (fa["delta"]["szi"], fb["delta"]["szi"]) == ("0.25", "-0.25")
    paid = ev.per_lot * 2_500  # a long pays the per-lot funding, a short receives it
    assert fa["delta"]["usdc"] == hlinfo.dec(-paid, 6) and fb["delta"]["usdc"] == hlinfo.dec(paid, 6)
    assert fa["delta"]["fundingRate"] == hlinfo.dec(ev.rate_ppb, 9) and fa["time"] == boundary + 10


# ---------------------------------------------------------------------------- ledger, accounts
def test_ledger_updates_deposits_transfers_and_withdrawals(tmp_path: Path) -> None:
    from state.tx import Transfer, Withdraw

    ix = Indexed(tmp_path)
    r1 = ix.block(ix.c.sign(A, Transfer(B.address, USDC, 5 * 10**6)))
    ix.block(ix.c.sign(A, Transfer(B.address, BTC, 10**7)))
    ix.block(ix.c.sign(A, Withdraw(USDC, 2 * 10**6, b"\x01" * 20)))
    rows = ix.info({"type": "userNonFundingLedgerUpdates", "user": user(A), "startTime": 0})
    deltas = [r["delta"] for r in rows]
    assert deltas[0] == {"type": "deposit", "usdc": "1000000"}
    assert deltas[1] == {"type": "deposit", "token": "BTC", "amount": "10"}
    assert deltas[2] == {"type": "internalTransfer", "usdc": "5", "user": user(A), "destination": user(B), "fee": "0"}
    assert deltas[3]["type"] == "spotTransfer" and deltas[3]["token"] == "BTC" and deltas[3]["amount"] == "0.1"
    assert deltas[4]["type"] == "withdraw" and deltas[4]["usdc"] == "2"
    assert rows[2]["hash"] == "0x" + r1.receipts[0].tx_hash.hex()
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)  # oldest first
    b_rows = ix.info({"type": "userNonFundingLedgerUpdates", "user": user(B), "startTime": 0})
    assert b_rows[2]["delta"]["user"] == user(A)  # the receiving side sees the same transfer


def test_sub_accounts_and_user_role(tmp_path: Path) -> None:
    from state.tx import Transfer

    ix = Indexed(tmp_path)
    assert ix.info({"type": "subAccounts", "user": user(A)}) is None
    ix.block(ix.c.sign(A, CreateSubAccount("hedge")))
    sub = sub_account_address(A.address, "hedge")
    ix.block(ix.c.sign(A, Transfer(sub, USDC, 1_000 * 10**6)))
    (s,) = ix.info({"type": "subAccounts", "user": user(A)})
    assert (s["name"], s["subAccountUser"], s["master"]) == ("hedge", address_to_text(sub), user(A))
    assert s["clearinghouseState"]["marginSummary"]["accountValue"] == "1000"
    assert s["spotState"]["balances"][0]["coin"] == "USDC"
    bot = key(72)
    ix.block(ix.c.sign(A, ApproveAgent(bot.address, "bot", 0)))

    def role(a: str) -> Any:
        return ix.info({"type": "userRole", "user": a})

    assert role(user(A)) == {"role": "user"}
    assert role(address_to_text(sub)) == {"role": "subAccount", "data": {"master": user(A)}}
    assert role(user(bot)) == {"role": "agent", "data": {"user": user(A)}}
    assert role(user(key(73))) == {"role": "missing"}


def test_perp_dexs_and_referral(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    assert ix.info({"type": "perpDexs"}) == [None]
    ref = ix.info({"type": "referral", "user": user(A)})
    assert ref["referredBy"] is None and ref["cumVlm"] == "0"


@pytest.mark.parametrize("body", [
    {"type": "userFunding", "user": "0x" + "11" * 20},  # no startTime
    {"type": "fundingHistory", "coin": "NOPE", "startTime": 0},
    {"type": "userNonFundingLedgerUpdates", "user": "nope", "startTime": 0},
    {"type": "historicalOrders"},
])
def test_malformed_requests_are_info_errors(body: dict[str, Any]) -> None:
    with pytest.raises(hlinfo.InfoError):
        hlinfo.answer(Chain().ex, body)


# ---------------------------------------------------------------------------- ccxt
def test_ccxt_reads_the_chain(tmp_path: Path) -> None:
    """ccxt's hyperliquid class, its transport replaced by ``/info`` answers (through JSON),
    parses every read a trader starts with."""
    ccxt = pytest.importorskip("ccxt")
    ix = Indexed(tmp_path)
    trade(ix, B, A, False, 60_000, 2_500)
    resting = ix.order(A, BTC_PERP, True, 59_000, 100)
    boundary = ix.c.genesis.genesis_time_ms + HOUR * ((ix.c.ex.time_ms - ix.c.genesis.genesis_time_ms) // HOUR + 1)
    ix.block(at=boundary + 1)
    sent: list[str] = []

    def post(request: dict[str, Any], params: Any = None) -> Any:
        sent.append(request["type"])
        return ix.info(request)

    ex = ccxt.hyperliquid({"walletAddress": user(A)})
    ex.publicPostInfo = post
    ex.load_markets()
    assert "BTC/USDC:USDC" in ex.markets
    book = ex.fetch_order_book("BTC/USDC:USDC")
    assert book["bids"][0][0] == 59_000.0
    positions = ex.fetch_positions(["BTC/USDC:USDC"])
    assert positions[0]["contracts"] == 0.25 and positions[0]["side"] == "long"
    balance = ex.fetch_balance()
    assert balance["total"]["USDC"] > 0
    trades = ex.fetch_my_trades("BTC/USDC:USDC")
    assert len(trades) == 1 and trades[0]["side"] == "buy" and trades[0]["takerOrMaker"] == "taker"
    assert trades[0]["timestamp"] > 0
    (o,) = ex.fetch_open_orders("BTC/USDC:USDC")
    assert o["id"] == str(resting) and o["timestamp"] > 0 and o["status"] == "open"
    rates = ex.fetch_funding_rate_history("BTC/USDC:USDC", since=0)
    assert rates and rates[-1]["timestamp"] == boundary + 1
    orders = ex.fetch_orders("BTC/USDC:USDC")
    assert {x["status"] for x in orders} >= {"open", "closed"}
    assert {"perpDexs", "metaAndAssetCtxs", "spotMetaAndAssetCtxs", "l2Book", "clearinghouseState",
            "userFills", "frontendOpenOrders", "fundingHistory", "historicalOrders"} <= set(sent)


def test_hyperliquid_sdk_reads_the_new_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hyperliquid-python-sdk's ``Info``, its HTTP post answered by ``/info``."""
    api = pytest.importorskip("hyperliquid.api")
    from hyperliquid.info import Info

    ix = Indexed(tmp_path)
    trade(ix, B, A, False, 60_000, 2_500)
    t0 = ix.c.ex.time_ms
    ix.block(at=ix.c.genesis.genesis_time_ms + HOUR * ((t0 - ix.c.genesis.genesis_time_ms) // HOUR + 1))
    monkeypatch.setattr(api.API, "post", lambda self, path, payload=None: ix.info(payload or {}))
    info = Info("http://node.invalid", skip_ws=True)
    (fill,) = info.user_fills(user(A))
    assert fill["dir"] == "Open Long" and fill["hash"] != "0x" + "00" * 32
    assert len(info.user_funding_history(user(A), 0)) == 1
    assert info.funding_history("BTC", 0)[-1]["coin"] == "BTC"
    assert [o["status"] for o in info.historical_orders(user(B))] == ["filled"]
    assert info.query_sub_accounts(user(A)) is None
    assert info.user_role(user(A)) == {"role": "user"}
    assert info.query_referral_state(user(A))["referredBy"] is None
