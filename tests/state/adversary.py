"""A library of adversarial flows for the state machine, and the invariants every block keeps.

A flow is a list of blocks; a block is a list of steps drawn by hypothesis from the moves
below. Each step is turned into signed transactions against the current state (so one
example builds a real chain: makers quoting, leveraged traders, borrowers, lenders,
wash-traders, an oracle that crashes and recovers, hours of idle time between blocks).

Attack classes the moves cover:
- leveraged crash: perp longs and shorts up to 20x, spot bought with borrowed USDC, an
  oracle that falls or jumps by up to 8% a block, books that vanish (liquidations through
  the book, backstops, ADL, the fund's unwind, write-offs);
- interest: borrowers at high utilization and idle gaps of up to 3 days (interest pushes
  borrowers into liquidation with no trade);
- funding: one-sided quotes far from the oracle held over funding intervals;
- wash trading and thin books: two accounts trading with each other off the oracle;
- extreme values: orders at the market's maximum price and at the notional cap, oracle
  submissions at both ends of their range, borrows and withdrawals of 2^62;
- replays: previously rejected transactions sent again later;
- griefing: self-trades, cancels of others' orders, batches mixing valid and invalid actions.

Invariants checked after every block (``check_block``): ``apply_block`` returned (never
raised); value is conserved per asset (custody = every balance, the fee account, the
insurance fund and the pools' rounding, ``tests/state/invariants.py``); every pool's surplus
is >= 0; books and derived aggregates are sound; nobody but the fund ends below zero
equity, nobody below maintenance is left untouched; a passive account (no position, no
debt, no order) never loses value unless a "socialized" event says lenders took a loss;
the committed records equal the state in memory. And at every write-off
(``checking_write_offs``): it is for the fund's whole deficit, after the fund took the
pools' rounding dust, and leaves the fund with no more than its own rounding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from state import liquidation, risk, tx
from state.errors import Code
from state.events import Socialized
from state.keys import PrivateKey
from state.machine import BlockResult
from state.muldiv import ONE
from tests.harness import BRIDGE, BTC, BTC_PERP, BTC_SPOT, ETH, USDC, Chain, key
from tests.state.invariants import check_all
from tests.state.riskkit import BTC_UNIT, USD, risk_chain

VALIDATORS = [key(200 + i) for i in range(3)]
MAKERS = [key(210 + i) for i in range(2)]
TRADERS = [key(220 + i) for i in range(6)]
LENDERS = [key(230 + i) for i in range(2)]
HOLDER = key(235)  # supplies BTC, never trades
BYSTANDER = key(236)  # holds USDC with auto-lend off, never trades
PASSIVE = [*LENDERS, HOLDER, BYSTANDER]
ACTIVE = [*MAKERS, *TRADERS]
MAX_U62 = (1 << 62) - 1

move = st.one_of(
    st.tuples(st.just("oracle"), st.integers(-800, 500)),  # basis points this block
    st.tuples(st.just("quote"), st.integers(1, 5), st.integers(1, 40)),  # levels, thousands of lots
    st.tuples(st.just("pull")),  # makers cancel everything: an empty book
    st.tuples(st.just("perp"), st.integers(0, 5), st.booleans(), st.integers(1, 20)),  # who, long?, leverage
    st.tuples(st.just("spot_margin"), st.integers(0, 5), st.integers(1, 30)),  # who, thousands of USD
    st.tuples(st.just("borrow"), st.integers(0, 5), st.sampled_from([USDC, BTC]), st.integers(1, 100)),
    st.tuples(st.just("repay"), st.integers(0, 5)),
    st.tuples(st.just("withdraw"), st.integers(0, 9), st.sampled_from([USDC, BTC]), st.integers(0, 62)),
    st.tuples(st.just("wash"), st.integers(0, 5), st.integers(0, 5), st.integers(-500, 1_000)),
    st.tuples(st.just("one_sided"), st.integers(0, 5), st.booleans(), st.integers(1, 900)),  # bps off oracle
    st.tuples(st.just("idle"), st.integers(1, 72 * 3600)),  # seconds of block time before the block
    st.tuples(st.just("extreme"), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("replay"), st.integers(0, 50)),
    st.tuples(st.just("grief"), st.integers(0, 5), st.integers(0, 200)),
    st.tuples(st.just("lend_toggle"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("unwind_order"), st.integers(0, 5)),
    st.tuples(st.just("gtt"), st.integers(0, 5), st.booleans(), st.integers(0, 7_200)),  # expires in s
    st.tuples(st.just("dead_man"), st.integers(0, 5), st.integers(0, 7_200)),  # deadline in s (0: clear)
)
# every trader's opening: (long?, leverage of the perp leg, thousands of USD of spot bought on margin)
openings = st.lists(st.tuples(st.booleans(), st.integers(0, 20), st.integers(0, 30)),
                    min_size=len(TRADERS), max_size=len(TRADERS))
crash = st.lists(st.integers(-800, 300), min_size=0, max_size=8)  # oracle moves, basis points a block
flows = st.tuples(openings, crash, st.lists(st.lists(move, min_size=1, max_size=6), min_size=1, max_size=12))


@dataclass
class Adversary:
    """One chain under attack, and what the invariants need to remember between blocks."""

    chain: Chain
    px: int = 60_000 * USD  # the honest oracle price of BTC (micro-USDC per BTC)
    custody: dict[int, int] = field(default_factory=dict)
    seen: list[bytes] = field(default_factory=list)  # every transaction sent, for replays
    passive_value: dict[bytes, dict[int, int]] = field(default_factory=dict)
    results: list[BlockResult] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | None = None, **genesis: Any) -> Adversary:
        # a quorum of one (not the default two of three): the "extreme" step has one
        # validator alone put the oracle at the ends of its range, which must break nothing
        genesis.setdefault("risk", {"oracle": {"min_submissions": 1}})
        c = risk_chain(path, validators=VALIDATORS, **genesis)
        adv = cls(c)
        adv.custody = {a: c.ex.pools[a].custody for a in (USDC, BTC, ETH)}
        setup = [adv._oracle_txs()]
        for mk in MAKERS:
            setup.append([adv._deposit(mk, USDC, 50_000_000 * USD), adv._deposit(mk, BTC, 500 * BTC_UNIT)])
        for i, t in enumerate(TRADERS):
            setup.append([adv._deposit(t, USDC, (5_000 + 3_000 * i) * USD)])
        for ln in LENDERS:
            setup.append([adv._deposit(ln, USDC, 2_000_000 * USD)])
        setup.append([adv._deposit(HOLDER, BTC, 50 * BTC_UNIT)])
        setup.append([c.sign(BYSTANDER, tx.Lend(USDC, False))])  # auto-lend off first: kept idle
        setup.append([adv._deposit(BYSTANDER, USDC, 10_000 * USD)])
        setup.append(adv._quotes(5, 20))
        for txs in setup:
            adv.apply(txs)
        return adv

    # ------------------------------------------------------------------ transactions
    def _deposit(self, k: PrivateKey, asset: int, amount: int) -> bytes:
        return self.chain.sign(BRIDGE, tx.Deposit(k.address, asset, amount))

    def _oracle_txs(self) -> list[bytes]:
        c = self.chain
        return [c.sign(v, tx.OraclePrices(((BTC, self.px + 1_000 * i),))) for i, v in enumerate(VALIDATORS)]

    def _quotes(self, levels: int, thousands: int) -> list[bytes]:
        c = self.chain
        out = []
        ticks = self.px // USD
        for j, mk in enumerate(MAKERS):
            orders: list[Any] = [tx.CancelAll(None)]
            for i in range(1, levels + 1):
                off = max(1, ticks * (3 * i + j) // 1000)
                for market in (BTC_PERP, BTC_SPOT):
                    orders.append(tx.PlaceOrder(market, True, max(1, ticks - off), thousands * 1_000, tx.Tif.GTC, False, None))
                    orders.append(tx.PlaceOrder(market, False, ticks + off, thousands * 1_000, tx.Tif.GTC, False, None))
            out.append(c.sign(mk, tx.Batch(tuple(orders[:64]))))
        return out

    def txs_for(self, step: tuple[Any, ...]) -> list[bytes]:
        c = self.chain
        kind = step[0]
        ticks = max(1, self.px // USD)
        if kind == "oracle":
            self.px = max(1_000 * USD, self.px * (10_000 + step[1]) // 10_000)
            return self._oracle_txs()
        if kind == "quote":
            return self._quotes(step[1], step[2])
        if kind == "pull":
            return [c.sign(mk, tx.CancelAll(None)) for mk in MAKERS]
        if kind == "perp":
            t = TRADERS[step[1]]
            equity = max(risk.maintenance(c.ex, c.ex.accounts[t.address]).equity, 0) if t.address in c.ex.accounts else 0
            lots = min(equity * step[3] * 10_000 // max(self.px, 1), 10**9)
            limit = ticks * 11 // 10 if step[2] else ticks * 9 // 10
            return [c.sign(t, tx.PlaceOrder(BTC_PERP, step[2], max(1, limit), max(1, lots), tx.Tif.IOC, False, None))]
        if kind == "spot_margin":
            t = TRADERS[step[1]]
            usd = step[2] * 1_000 * USD
            lots = usd * 10_000 // max(self.px, 1)
            return [c.sign(t, tx.Borrow(USDC, usd)),
                    c.sign(t, tx.PlaceOrder(BTC_SPOT, True, ticks * 11 // 10, max(1, lots), tx.Tif.IOC, False, None))]
        if kind == "borrow":
            t = TRADERS[step[1]]
            unit = 1_000 * USD if step[2] == USDC else BTC_UNIT // 100
            return [c.sign(t, tx.Borrow(step[2], step[3] * unit))]
        if kind == "repay":
            t = TRADERS[step[1]]
            acct = c.ex.accounts.get(t.address)
            return [c.sign(t, tx.Repay(a, 1 << 40)) for a in sorted(acct.scaled)] if acct else []
        if kind == "withdraw":
            who = (ACTIVE + PASSIVE)[step[1] % len(ACTIVE + PASSIVE)]
            if who in PASSIVE:  # passive accounts keep their funds in: their value is watched
                who = TRADERS[step[1] % len(TRADERS)]
            return [c.sign(who, tx.Withdraw(step[2], min(1 << step[3], MAX_U62), b"out"))]
        if kind == "wash":
            a, b, bps = TRADERS[step[1]], TRADERS[step[2]], step[3]
            p = max(1, ticks * (10_000 + bps) // 10_000)
            return [c.sign(a, tx.PlaceOrder(BTC_PERP, True, p, 2, tx.Tif.GTC, False, None)),
                    c.sign(b, tx.PlaceOrder(BTC_PERP, False, p, 2, tx.Tif.GTC, False, None))]
        if kind == "one_sided":
            t = TRADERS[step[1]]
            bps = step[3] if step[2] else -step[3]
            p = max(1, ticks * (10_000 + bps) // 10_000)
            return [c.sign(t, tx.PlaceOrder(BTC_PERP, step[2], p, 1_600, tx.Tif.GTC, False, None))]
        if kind == "idle":
            c.time += step[1] * 1000
            return []
        if kind == "extreme":
            t = TRADERS[step[1]]
            spec = c.ex.markets[BTC_PERP]
            choices: list[Any] = [
                tx.PlaceOrder(BTC_PERP, True, spec.max_price_ticks, 1, tx.Tif.GTC, False, None),
                tx.PlaceOrder(BTC_SPOT, False, spec.max_price_ticks, 1, tx.Tif.GTC, False, None),
                tx.PlaceOrder(BTC_PERP, False, 1, 10**9, tx.Tif.GTC, False, None),
                tx.Borrow(BTC, MAX_U62),
                tx.Withdraw(USDC, MAX_U62, b"x"),
                tx.Modify(BTC_PERP, 1, None, spec.max_price_ticks, 10**9),
            ]
            txs = [c.sign(t, choices[step[2] % len(choices)])]
            if step[2] == 5:  # and a validator at the ends of the oracle's range
                txs.append(c.sign(VALIDATORS[0], tx.OraclePrices(((BTC, 1 if step[1] % 2 else MAX_U62),))))
            return txs
        if kind == "replay":
            return [self.seen[step[1] % len(self.seen)]] if self.seen else []
        if kind == "grief":
            t = TRADERS[step[1]]
            return [c.sign(t, tx.Batch((tx.Cancel(BTC_PERP, step[2], None), tx.Cancel(BTC_SPOT, step[2], None),
                                     tx.PlaceOrder(BTC_PERP, True, ticks, 0, tx.Tif.GTC, False, None),
                                     tx.CancelAll(BTC_PERP))))]
        if kind == "lend_toggle":
            return [c.sign(TRADERS[step[1]], tx.Lend(USDC, step[2]))]
        if kind == "unwind_order":
            return [c.sign(TRADERS[step[1]], tx.SetUnwindOrder((BTC_SPOT, BTC_PERP)))]
        if kind == "gtt":  # a good-til-time quote off the oracle (state/lifetimes.py)
            p = max(1, ticks * (99 if step[2] else 101) // 100)
            return [c.sign(TRADERS[step[1]], tx.PlaceOrder(BTC_PERP, step[2], p, 5, tx.Tif.GTC, False, None,
                                                           c.time + step[3] * 1000))]
        if kind == "dead_man":
            return [c.sign(TRADERS[step[1]], tx.ScheduleCancel(c.time + step[2] * 1000 if step[2] else None))]
        raise AssertionError(kind)

    # ------------------------------------------------------------------ blocks
    def apply(self, txs: list[bytes]) -> BlockResult:
        """One block: it must apply, and every invariant must hold after it."""
        before = self._passive_values()
        with checking_write_offs() as write_offs:
            result = self.chain.block(*txs)
        assert not write_offs, write_offs[:3]
        self.results.append(result)
        self.seen.extend(txs)
        for _, e in result.events:
            if isinstance(e, tuple) and e[0] == "deposit":
                self.custody[e[2]] += e[3]
            elif isinstance(e, tuple) and e[0] == "withdraw":
                self.custody[e[2]] -= e[3]
        self.check_block(result, before)
        return result

    def run(self, flow: tuple[Any, ...]) -> None:
        """A whole flow: the traders' openings, a price path with the makers requoting
        thinly around it, then the drawn steps."""
        opening, path, blocks = flow
        for i, (is_long, lev, spot) in enumerate(opening):
            steps: list[tuple[Any, ...]] = []
            if lev:
                steps.append(("perp", i, is_long, lev))
            if spot:
                steps.append(("spot_margin", i, spot))
            if steps:
                self.step_block(steps)
        for bps in path:
            self.step_block([("oracle", bps), ("quote", 2, 5)])
        for steps in blocks:
            self.step_block(steps)

    def step_block(self, steps: list[tuple[Any, ...]]) -> BlockResult:
        txs: list[bytes] = []
        for s in steps:
            txs.extend(self.txs_for(s))
        return self.apply(txs)

    def _passive_values(self) -> dict[bytes, dict[int, int]]:
        out = {}
        for k in PASSIVE:
            acct = self.chain.ex.accounts.get(k.address)
            if acct is not None and not acct.positions and not acct.open_orders:
                out[k.address] = {a: acct.balance(a) for a in (USDC, BTC)}
        return out

    def check_block(self, result: BlockResult, before: dict[bytes, dict[int, int]]) -> None:
        ex = self.chain.ex
        events = list(result.events)
        check_all(self.chain, self.custody, events)  # value, pools, books, liquidations, store == memory
        for a in (USDC, BTC, ETH):
            assert ex.pool_surplus(a) >= 0, ("pool surplus", a, ex.pool_surplus(a))
        socialized = any(isinstance(e, tuple) and e[0] == "socialized" for _, e in events)
        after = self._passive_values()
        for addr, vals in before.items():
            for a, v in vals.items():
                now = after.get(addr, {}).get(a, v)
                assert now >= v or socialized, f"passive {addr.hex()[:8]} lost {v - now} of asset {a}"
        for r in result.receipts:  # every rejection carries a registered code
            assert Code(r.code) in Code


@contextmanager
def checking_write_offs() -> Iterator[list[str]]:
    """While open, ``liquidation.socialize`` is checked against the rule it keeps: lenders
    pay only what the fund could not. What it finds is appended to the yielded list.

    At the write-off: the shortfall is the fund's whole deficit, and the pools hold no dust
    the fund could have taken (the block's dust is the fund's; ``unwind_fund`` credits it to
    the fund first). What is left is the residue of that credit, at most
    ``_credit_residue`` per pool. After it: the fund holds no more than the write-off's own
    rounding, ``_write_off_rounding`` per asset written off.

    The check is at the write-off, not at the block's end: after it the block goes on (the
    re-check of every account, whose liquidations pay the fund fees; the idle settlement;
    the dust sweep), and what the fund holds at the end also says what those brought."""
    found: list[str] = []
    inner = liquidation.socialize

    def socialize(ex: Any, fund: Any, shortfall: int) -> None:
        equity = risk.assess(ex, fund, False).equity
        if shortfall != -equity:
            found.append(f"write-off of {shortfall} for a fund at equity {equity}")
        for a in range(len(ex.genesis.assets)):
            if ex.pool_surplus(a) > _credit_residue(ex, a):
                found.append(f"write-off while pool {a} held {ex.pool_surplus(a)} units of dust")
        start = len(ex.events)
        inner(ex, fund, shortfall)
        assets = [e.asset for e in ex.events[start:] if isinstance(e, Socialized)]
        left = risk.assess(ex, fund, False).equity
        if left > sum(_write_off_rounding(ex, a) for a in assets):
            found.append(f"write-off of {shortfall} left the fund at equity {left} (assets {assets})")

    liquidation.socialize = socialize
    try:
        yield found
    finally:
        liquidation.socialize = inner


def _credit_residue(ex: Any, a: int) -> int:
    """The most of a pool's dust that crediting it to the fund leaves in the pool, in units
    (the credit's shares round down). For a credit ``d`` at index ``I`` (1e18 fixed point)
    into supply, ``k = floor(d * 1e18 / I)`` shares: ``k * I / 1e18 > d - I / 1e18``, and
    the pool's supply value ``floor(S * I / 1e18)`` grows by more than ``k * I / 1e18 - 1``,
    so less than ``I / 1e18 + 1`` stays. A repayment of part of a debt is the same at the
    borrow index; one of the whole debt cancels shares worth more than the debt less one
    unit, and the pool's ``ceil`` debt value falls by more than that less one, then supplies
    the rest: at most ``I / 1e18 + 3`` in all. With ``I`` the larger of the two indices,
    the residue is below ``I / 1e18 + 3``, i.e. at most ``ceil(I / 1e18) + 2`` units."""
    pool = ex.pools[a]
    return -(-max(pool.supply_index, pool.borrow_index) // ONE) + 2


def _write_off_rounding(ex: Any, a: int) -> int:
    """What the write-off of asset ``a`` may leave the fund above zero (collateral units):
    it writes off ``ceil(shortfall * debt / debt_value)`` units, at most one unit's worth
    more than the shortfall, and the fund's debt may fall by one unit more than that
    (state/liquidation.py ``socialize``); plus one for the valuation's own rounding."""
    px = risk.asset_price(ex, a) if a != ex.collateral_asset else ex.unit[a]
    return 2 * -(-px // ex.unit[a]) + 1
