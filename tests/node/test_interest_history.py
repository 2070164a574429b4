"""Interest itemized per account and asset (node/interest.py, issue 24), on a harness chain
indexed into a real block store as the node does it.

The scenario, by hand. USDC's rate model (genesis defaults): base 0, slope1 4% APR up to 90%
utilization, reserve factor 10%. The lender L supplies $1,000,000; the borrower B posts
10 BTC and borrows $450,000: utilization 45%, so the borrow rate is 4% * 45/90 = 2% APR
(20,000 ppm). One hour later the borrow index has grown by
ceil(1e18 * 20_000 * 3_600_000 / (1e6 * YEAR_MS)) = 2_283_105_022_832, so B's debt of
450,000 USDC (4.5e11 units, as many shares at index 1e18) costs
ceil(4.5e11 * 2_283_105_022_832 / 1e18) = 1_027_398 units: $1.027398 (450,000 * 2% / 8760).
Of it 10% (102_739) is the reserve; L's 1e12 supply shares get the other 924_659.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from node import hlinfo, interest
from node.blockstore import BlockStore
from state.exchange import Exchange
from state.keys import address_to_text
from state.muldiv import ONE
from state.records import account_key
from state.tx import Borrow, Deposit, Transfer
from tests.harness import BRIDGE, BTC, USDC, Chain, key, make_genesis
from tests.node.indexing import Books, index_block

L, B = key(60), key(61)
HOUR = 3_600_000


class Indexed:
    """A chain whose every block is indexed with interest: the interest book sees the state
    each block starts from, as node/execution.py arranges."""

    def __init__(self, tmp: Path) -> None:
        self.c = Chain()
        self.store = BlockStore(str(tmp / "blocks"))
        self.books = Books(self.store)

    def block(self, *txs: bytes, at: int | None = None) -> Any:
        if at is not None:
            self.c.time = at - 1000  # Chain.block adds a second
        self.books.interest.before_block(self.c.ex)
        r = self.c.block(*txs)
        index_block(self.store, self.books.candles, self.c.ex, r, txs, self.c.ex.time_ms, self.books)
        return r

    def run(self, k: Any, action: Any, at: int | None = None) -> Any:
        r = self.block(self.c.sign(k, action), at=at)
        assert r.receipts[0].code == 0, r.receipts[0]
        return r

    def interest(self, k: Any) -> list[tuple[int, int, int, int]]:
        """(time, asset, amount, rate_ppm) of the account's interest entries, oldest first."""
        entries, _ = self.store.history(k.address, 1000, kinds=["interest"])
        return [(t, e[2], e[3], e[4]) for _h, _s, t, e in reversed(entries)]


def setup(ix: Indexed) -> int:
    """L supplies $1M, B posts 10 BTC and borrows $450k; returns the borrow block's time."""
    ix.run(BRIDGE, Deposit(L.address, USDC, 1_000_000 * 10**6))
    ix.run(BRIDGE, Deposit(B.address, BTC, 10 * 10**8))
    ix.run(B, Borrow(USDC, 450_000 * 10**6))
    pool = ix.c.ex.pools[USDC]
    assert pool.rate_ppm == 20_000  # 2% APR at 45% utilization
    assert pool.borrow_index == ONE and pool.supply_index == ONE
    return int(ix.c.ex.time_ms)


def test_one_hour_by_hand(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    t = setup(ix)
    l0, b0 = ix.c.balance(L, USDC), ix.c.balance(B, USDC)
    ix.block(at=t + HOUR)  # one accrual step of exactly an hour, in the next hour
    assert ix.c.ex.pools[USDC].borrow_index == ONE + 2_283_105_022_832
    ((_, asset, paid, b_rate),) = ix.interest(B)
    assert (asset, paid, b_rate) == (USDC, -1_027_398, 20_000)
    ((_, asset, earned, l_rate),) = ix.interest(L)
    assert (asset, earned) == (USDC, 924_659)
    assert l_rate == ix.c.ex.pools[USDC].supply_rate_ppm()
    # the entries are exactly the balances' movement
    assert ix.c.balance(B, USDC) - b0 == paid
    assert ix.c.balance(L, USDC) - l0 == earned
    # B's BTC supply earns nothing (nobody borrows BTC): no entry for it
    assert all(a == USDC for _, a, _, _ in ix.interest(B))


def test_entries_sum_to_the_balance_movement_over_hours(tmp_path: Path) -> None:
    """Several blocks an hour at uneven times, over five hours: every account's entries add
    up to exactly its balance's movement (nobody moves money after the setup)."""
    ix = Indexed(tmp_path)
    t = setup(ix)
    start = {k.address: ix.c.balance(k, USDC) for k in (L, B)}
    fund = ix.c.ex.insurance_account
    for offset in (600_000, 2_000_000, HOUR + 5, HOUR + 1_800_000, 2 * HOUR + 7, 3 * HOUR + 99, 3 * HOUR + 60_000,
                   5 * HOUR + 1):
        ix.block(at=t + offset)
    for k in (L, B):
        entries = ix.interest(k)
        assert len(entries) == 4  # hours 1, 2, 3 and 5 each had a first block; hour 4 none
        assert sum(a for _, _, a, _ in entries) == ix.c.balance(k, USDC) - start[k.address]
    paid = -sum(a for _, _, a, _ in ix.interest(B))
    earned = sum(a for _, _, a, _ in ix.interest(L))
    assert 0 < earned < paid  # the reserve's 10% goes to the insurance fund
    fund_entries, _ = ix.store.history(fund, 100, kinds=["interest"])
    assert fund_entries  # the fund's reserve, supplied to the pool, earns too


def test_flows_in_the_middle_of_an_hour_stay_out_of_interest(tmp_path: Path) -> None:
    """L transfers $100k to B mid-hour and B repays nothing: the entries still equal the
    balance movement less the transfer, to the unit's conversion dust (a credit's shares
    round down, state/lending.py), which is the flow's, not interest."""
    ix = Indexed(tmp_path)
    t = setup(ix)
    l0, b0 = ix.c.balance(L, USDC), ix.c.balance(B, USDC)
    ix.block(at=t + 1_000_000)
    ix.run(L, Transfer(B.address, USDC, 100_000 * 10**6), at=t + 2_000_000)
    ix.block(at=t + 2 * HOUR)
    ix.block(at=t + 3 * HOUR)
    moved = 100_000 * 10**6
    l_sum = sum(a for _, _, a, _ in ix.interest(L))
    b_sum = sum(a for _, _, a, _ in ix.interest(B))
    assert abs((ix.c.balance(L, USDC) - l0 + moved) - l_sum) <= 1
    assert abs((ix.c.balance(B, USDC) - b0 - moved) - b_sum) <= 1
    # B's transfer in repaid debt first: its debt shrank, so its second hour costs less
    (_, _, first, _), (_, _, second, _) = ix.interest(B)
    assert first < 0 and second < 0 and abs(second) < abs(first)


def test_restart_resumes_from_the_store(tmp_path: Path) -> None:
    """A node restarted between hours loads what it held and itemizes the same."""
    ix = Indexed(tmp_path)
    t = setup(ix)
    b0 = ix.c.balance(B, USDC)
    ix.block(at=t + 1_000_000)
    ix.books = Books(ix.store)  # a restart: nothing in memory
    ix.block(at=t + HOUR + 1)
    assert sum(a for _, _, a, _ in ix.interest(B)) == ix.c.balance(B, USDC) - b0


def test_history_rpc_shape_and_hyperliquid_ledger(tmp_path: Path) -> None:
    from node.jsonfmt import event_from_list

    ix = Indexed(tmp_path)
    t = setup(ix)
    ix.block(at=t + HOUR)
    entries, _ = ix.store.history(B.address, 10, kinds=["interest"])
    (_h, seq, _t, e) = entries[0]
    assert seq == interest.SEQ_BASE + USDC
    assert event_from_list(e) == {"type": "interest", "account": address_to_text(B.address), "asset": USDC,
                                  "amount": -1_027_398, "rate_ppm": 20_000}
    ledger = hlinfo.answer(ix.c.ex, {"type": "userNonFundingLedgerUpdates", "user": address_to_text(B.address),
                                     "startTime": 0}, ix.store)
    assert [d["delta"]["type"] for d in ledger] == ["deposit", "borrowLend", "borrowLend"]
    assert ledger[1]["delta"] == {"type": "borrowLend", "token": "USDC", "operation": "borrow", "amount": "450000",
                                  "interestAmount": "0"}
    assert ledger[2]["delta"]["operation"] == "interest" and ledger[2]["delta"]["amount"] == "-1.027398"
    assert ledger[2]["delta"]["rate"] == "0.02" and ledger[2]["hash"] == "0x" + "00" * 32
    assert ledger[1]["hash"] != ledger[2]["hash"]


def test_pruning_removes_an_hours_entries(tmp_path: Path) -> None:
    ix = Indexed(tmp_path)
    t = setup(ix)
    ix.block(at=t + HOUR)
    h = ix.c.ex.height
    assert ix.interest(B)
    ix.store.prune_below(h + 1)
    assert ix.interest(B) == [] and ix.interest(L) == []


def test_cost_20k_accounts(tmp_path: Path) -> None:
    """The module docstring's figures: 20,000 USDC suppliers, 2,000 of them BTC borrowers
    too; one hour's itemization, and a block that touched 100 accounts."""
    ex = Exchange(make_genesis())
    addrs = [i.to_bytes(20, "big") for i in range(1, 20_001)]
    for i, a in enumerate(addrs):
        acct = ex.account(a)
        ex.pools.credit(acct, USDC, 1_000 * 10**6 + i)
        if i % 10 == 0:
            ex.pools.credit(acct, BTC, -(10**5 + i))
    book = interest.InterestBook(None)
    book.before_block(ex)
    assert len(book.held) == 22_000
    assert len(book.block(ex, 1, ex.time_ms, [])) == 22_001  # the seeding is written once, with the hour
    ex.pools[USDC].supply_index += 10**12
    ex.pools[BTC].borrow_index += 10**13
    touched = [(account_key(a), b"") for a in addrs[:100]]
    for a in addrs[:100]:
        ex.pools.credit(ex.accounts[a], USDC, 5)
    t0 = time.perf_counter()
    puts = book.block(ex, 2, ex.time_ms + 1, touched)  # same hour: the touched accounts only
    block_ms = (time.perf_counter() - t0) * 1000
    assert 100 <= len(puts) <= 102
    t0 = time.perf_counter()
    puts = book.block(ex, 3, ex.time_ms + HOUR, [])
    hour_ms = (time.perf_counter() - t0) * 1000
    entries = [p for p in puts if p[0].startswith(b"h")]
    assert len(entries) == 22_000
    print(f"\ninterest itemization, 20k accounts: hour {hour_ms:.1f} ms, block touching 100 accounts {block_ms:.2f} ms")
    assert hour_ms < 2_000 and block_ms < 100
