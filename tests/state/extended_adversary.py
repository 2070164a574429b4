"""An extended adversary (tests/state/adversary.py's moves and more): isolated margin,
act_as into sub-accounts and isolated accounts, transfers, leverage, trigger orders, a dated
future across its expiry, agent keys trying what they may not, an ETH price walk, stacks of
closing orders and off-market orders anywhere in the band, amounts at integer extremes, a
supplier selling its lent-out ETH to an account with auto-lend off that withdraws it.

Besides every block invariant of ``Adversary``, ``checking`` wraps ``apply_tx`` with a
per-transaction one: an accepted transaction never leaves an account it acts for deeper
below initial margin (orders counted) or below zero equity. It found, before they were
fixed, closing orders that together opened unmargined positions, closes priced at the
band's edge into an accomplice, a spot sale into bankruptcy and an isolated account swept
back to cross while it held another market (tests/state/test_economic_attacks.py).
``checking_pools`` wraps each action with another: no action moves money from a pool into
``idle`` past the pool's utilization cap (tests/state/test_idle_credit_cap.py).

For the lapse rules (good-til-time orders lapsing within a few blocks, dead-man switches,
modifies and cancels of orders that may have lapsed, spot sales under perp asks that may
lapse), every block also checks that no order is cancelled twice and that the derived
structures equal what the orders give (``check_lapse_derived``: each level's sums by expiry
and expired sums, its depth against the orders, each account's orders by expiry), and
``checking`` that a transaction refused ``EXPIRY_PENDING`` or ``DEAD_MAN_PENDING`` changes
no record but its signer's nonce and emits nothing. It found
a crossing order judged only as an order of its side (a spot buy over the index under
perp asks; tests/state/test_economic_attacks.py).

    python -m tests.state.extended_adversary 200 0 [restart] [lapse]   # a longer campaign

(``lapse``: the sweep and the transactions' lapse allowance at 2 and 3 a block, so the
good-til-time orders and dead-man switches the flows line up wait on the book lapsed.)
"""

from __future__ import annotations

import random
import sys
import tempfile
import traceback
from typing import Any

from state import handlers, lapse, lifetimes, machine, risk, tx
from state import records as records_mod
from state.agents import sub_account_address
from state.errors import Code
from state.genesis import FEE_ACCOUNT, INSURANCE_ACCOUNT, default_markets, future_market
from state.isolated import isolated_address
from state.receipts import Cancelled
from tests.harness import BTC, BTC_PERP, BTC_SPOT, ETH, ETH_PERP, ETH_SPOT, T0, USDC, Chain, key
from tests.state.adversary import MAKERS, TRADERS, VALIDATORS, Adversary
from tests.state.riskkit import USD

FUT = 4
EXPIRY = T0 + 3 * 3600 * 1000
MARKETS = [*default_markets(), future_market("BTC-FUT", "BTC", EXPIRY, 1800 * 1000)]
DERIVS = [BTC_PERP, ETH_PERP, FUT]
ALL_M = [BTC_SPOT, ETH_SPOT, BTC_PERP, ETH_PERP, FUT]
AGENTS = [key(240 + i) for i in range(6)]
EXTREMES = [0, 1, 2, 10**6, 10**9, 10**12, (1 << 62) - 1, 1 << 62, (1 << 63) - 1]




def _shortfall(ex: Any, addr: bytes) -> int | None:
    acct = ex.accounts.get(addr)
    if acct is None:
        return None
    a = risk.assess(ex, acct, True, orders=True)
    if not a.liabilities:
        return 0
    return a.requirement - a.equity


def _group(ex: Any, tx_: Any) -> list[bytes]:
    s = tx_.signer
    ag = ex.agents.get(s)
    if ag is not None:
        s = ag[0]
    out = [s, *sorted(ex.subs_of.get(s, ()))]
    return out


def checking(apply_tx: Any, violations: list[str]) -> Any:
    """``apply_tx`` that records in ``violations`` every accepted transaction that leaves an
    account it acts for (its own, its sub-accounts' and isolated accounts') deeper below
    initial margin, orders counted, or below zero equity: what no risk-reducing exception
    may allow."""

    def checked(ex: Any, tx_: Any) -> Any:
        if isinstance(tx_.action, (tx.OraclePrices, tx.Deposit)):
            return apply_tx(ex, tx_)
        before = {a: _shortfall(ex, a) for a in _group(ex, tx_)}
        pending = lapse.expiries_due(ex) or lapse.switches_due(ex)
        records = dict(ex.snapshot_records()) if pending else None
        events = len(ex.events)
        r = apply_tx(ex, tx_)
        if r.code in (Code.EXPIRY_PENDING, Code.DEAD_MAN_PENDING):  # nothing changes but the nonce
            assert records is not None
            after = dict(ex.snapshot_records())
            changed = sorted(k for k in records.keys() | after.keys() if records.get(k) != after.get(k))
            if changed != [records_mod.nonce_key(tx_.signer)] or len(ex.events) != events:
                violations.append(f"h{ex.height} {Code(r.code).name} changed {[k[:9].hex() for k in changed]}, "
                                  f"{len(ex.events) - events} events: {tx_.action!r}"[:600])
        if r.code != Code.OK:
            return r
        for a in _group(ex, tx_):
            if a in (FEE_ACCOUNT, INSURANCE_ACCOUNT):
                continue
            b = before.get(a)
            acct = ex.accounts.get(a)
            if acct is not None:
                eq = risk.maintenance(ex, acct).equity
                if eq < -1_000 and (b is None or b <= 0 or eq < -(b + 1_000)):
                    violations.append(f"h{ex.height} negative equity {eq} after {r.kind} of {a.hex()[:8]}: "
                                      f"{tx_.action!r}"[:600])
            after = _shortfall(ex, a)
            if after is not None and after > max(b or 0, 0) + 1_000:  # beyond $0.001 of rounding
                violations.append(f"h{ex.height} {r.kind} of {a.hex()[:8]}: shortfall {b} -> {after}: "
                                  f"{tx_.action!r}"[:600])
        return r

    return checked


def _pool_marks(ex: Any) -> list[tuple[int, int, int]]:
    return [(p.headroom(), p.idle_total, p.custody) for p in ex.pools.by_asset]


def checking_pools(run_one: Any, violations: list[str]) -> Any:
    """``handlers._run_one`` that records in ``violations`` every action after which a
    pool's idle funds grew (beyond what the action deposited) while the action left the
    pool's headroom below ``min(its headroom before, 0)``: idle funds withdraw without a
    check, so an action must not move money out of the pool into ``idle`` past the pool's
    utilization cap (``Pools.settle_idle``). Checked per action rather than per transaction:
    a batch's first action may credit an idle account what the pool may pay, and its second
    then push the pool past its cap by a fill into accounts that lend (a fill is never
    refused), which is no violation."""

    def checked(ex: Any, signer: bytes, pubkey: bytes, action: Any) -> Any:
        before = _pool_marks(ex)
        r = run_one(ex, signer, pubkey, action)
        for asset, ((h0, idle0, c0), (h1, idle1, c1)) in enumerate(zip(before, _pool_marks(ex), strict=True)):
            if h1 < min(h0, 0) and idle1 - idle0 > max(c1 - c0, 0):
                violations.append(f"h{ex.height} asset {asset}: headroom {h0} -> {h1} and idle {idle0} -> {idle1} "
                                  f"after {action!r}"[:600])
        return r

    return checked


def check_lapse_derived(ex: Any) -> None:
    """The derived structures of today's lapse rules equal what the orders give: each
    level's aggregates, per-expiry sums and expired sums (``Level.by_expiry``, ``xcount``...),
    its floor a lower bound, its depth the brute-force depth of the orders not lapsed; each
    account's orders by expiry (``Account.expiries``) exactly its open good-til-time orders."""
    switches = lapse.switches_due(ex)
    now = ex.time_ms
    for _m, book in sorted(ex.books.items()):
        for side, prices in ((book.bids, book.bid_prices), (book.asks, book.ask_prices)):
            assert sorted(side) == prices, ("level prices", book.market)
            for p, level in side.items():
                live = [o for o in level.orders if o.live]
                assert live, ("empty level kept", book.market, p)
                assert level.count == len(live) and level.total == sum(o.size for o in live)
                assert level.firm == sum(o.size for o in live if not o.reduce_only)
                buckets: dict[int, list[int]] = {}
                x = [0, 0, 0]
                for o in live:
                    if not o.expires_at:
                        continue
                    assert level.floor <= o.expires_at, ("floor above an expiry", book.market, p)
                    row = x if o.expires_at < level.cut else buckets.setdefault(o.expires_at, [0, 0, 0])
                    row[0] += 1
                    row[1] += o.size
                    row[2] += 0 if o.reduce_only else o.size
                assert buckets == level.by_expiry.buckets, ("level buckets", book.market, p, buckets, level.by_expiry.buckets)
                assert x == [level.xcount, level.xtotal, level.xfirm], ("expired sums", book.market, p)
                good = [o for o in live if not lapse.lapsed(ex, o, switches)]
                want = (sum(o.size for o in good), sum(o.size for o in good if not o.reduce_only), len(good))
                assert lapse.level_depth(ex, level, switches) == want, ("depth", book.market, p)
    for addr, acct in ex.accounts.items():
        gtt = {}
        for oid, m in acct.open_orders.items():
            o = ex.books[m].orders[oid]
            assert o.owner == addr
            if o.expires_at:
                gtt[oid] = o.expires_at
        xp = acct.expiries
        if xp is None:
            assert not gtt, ("orders by expiry missing", addr.hex()[:8])
            continue
        held = set(xp.expired)
        for e, oids in xp.by_expiry.buckets.items():
            assert oids, "empty expiry bucket kept"
            assert e in xp.by_expiry.heap
            for oid in oids:
                assert gtt.get(oid) == e, ("bucket of a gone order", addr.hex()[:8], oid)
            assert not held & oids
            held |= oids
        for oid in xp.expired:
            assert oid in gtt and gtt[oid] < now, ("expired set", addr.hex()[:8], oid)
        assert held == set(gtt), ("orders by expiry", addr.hex()[:8], sorted(held ^ set(gtt)))


class Ext(Adversary):
    eth_px: int = 3_000 * USD
    gone: set[int]

    def check_block(self, result: Any, before: Any) -> None:
        super().check_block(result, before)
        ex = self.chain.ex
        if not hasattr(self, "gone"):
            self.gone = set()
        for _, e in result.events:  # an order leaves the book once: never two Cancelled for one oid
            if isinstance(e, Cancelled):
                assert e.oid not in self.gone, f"h{ex.height}: oid {e.oid} cancelled twice ({e.reason})"
                self.gone.add(e.oid)
        check_lapse_derived(ex)

    def _oracle_txs(self) -> list[bytes]:
        c = self.chain
        return [c.sign(v, tx.OraclePrices(((BTC, self.px + 1_000 * i), (ETH, self.eth_px + 100 * i))))
                for i, v in enumerate(VALIDATORS)]

    def txs_for(self, step: tuple[Any, ...]) -> list[bytes]:
        c = self.chain
        kind = step[0]
        if kind == "eth_oracle":
            self.eth_px = max(10 * USD, self.eth_px * (10_000 + step[1]) // 10_000)
            return self._oracle_txs()
        t = TRADERS[step[1] % len(TRADERS)] if len(step) > 1 and isinstance(step[1], int) else None
        ticks_btc = max(1, self.px // USD)
        ticks_eth = max(1, self.eth_px // 100_000)

        def px_of(m: int, bps: int = 0) -> int:
            base = ticks_eth if m in (ETH_PERP, ETH_SPOT) else ticks_btc
            return max(1, base * (10_000 + bps) // 10_000)

        def lots_for(m: int, usd: int) -> int:
            spec = c.ex.markets[m]
            return max(1, usd // max(1, px_of(m) * spec.tick_value))

        if kind == "iso_on":
            return [c.sign(t, tx.SetMarginMode(DERIVS[step[2] % 3], True))]
        if kind == "iso_off":
            return [c.sign(t, tx.SetMarginMode(DERIVS[step[2] % 3], False))]
        if kind == "iso_margin":
            amt = step[3] * 1_000 * USD if abs(step[3]) < 100 else (EXTREMES[abs(step[3]) % len(EXTREMES)] * (1 if step[3] > 0 else -1))
            if amt == 0:
                amt = 1
            amt = max(-(1 << 62), min(amt, (1 << 62)))
            return [c.sign(t, tx.UpdateIsolatedMargin(DERIVS[step[2] % 3], amt))]
        if kind == "iso_actas":
            iso = isolated_address(t.address, DERIVS[step[2] % 3])
            m = ALL_M[step[3] % len(ALL_M)]
            lots = lots_for(m, step[5] * 1_000 * USD)
            return [c.sign(t, tx.ActAs(iso, tx.PlaceOrder(m, step[4], px_of(m, 300 if step[4] else -300), lots,
                                                         tx.Tif.IOC, False, None)))]
        if kind == "iso_order":  # routed to the isolated account
            m = DERIVS[step[2] % 3]
            lots = lots_for(m, step[4] * 1_000 * USD)
            return [c.sign(t, tx.PlaceOrder(m, step[3], px_of(m, 300 if step[3] else -300), lots, tx.Tif.IOC,
                                            False, None))]
        if kind == "sub_create":
            return [c.sign(t, tx.CreateSubAccount(f"s{step[2] % 2}"))]
        if kind == "sub_fund":
            sub = sub_account_address(t.address, f"s{step[2] % 2}")
            return [c.sign(t, tx.Transfer(sub, USDC, step[3] * 1_000 * USD or 1))]
        if kind == "sub_back":
            sub = sub_account_address(t.address, f"s{step[2] % 2}")
            amt = EXTREMES[step[3] % len(EXTREMES)] or 1
            return [c.sign(t, tx.ActAs(sub, tx.Transfer(t.address, USDC, min(amt, (1 << 62) - 1))))]
        if kind == "sub_trade":
            sub = sub_account_address(t.address, f"s{step[2] % 2}")
            m = ALL_M[step[3] % len(ALL_M)]
            lots = lots_for(m, step[5] * 1_000 * USD)
            return [c.sign(t, tx.ActAs(sub, tx.PlaceOrder(m, step[4], px_of(m, 300 if step[4] else -300), lots,
                                                         tx.Tif.IOC, False, None)))]
        if kind == "xfer":
            to = TRADERS[step[2] % len(TRADERS)]
            amt = EXTREMES[step[4] % len(EXTREMES)] or 1
            return [c.sign(t, tx.Transfer(to.address, step[3] % 3, min(amt, (1 << 62) - 1)))]
        if kind == "lev":
            return [c.sign(t, tx.UpdateLeverage(DERIVS[step[2] % 3], step[3]))]
        if kind == "trig":
            m = ALL_M[step[2] % len(ALL_M)]
            is_buy, bps, is_market, ro, usd = step[3], step[4], step[5], step[6], step[7]
            spec = c.ex.markets[m]
            ro = ro and spec.is_derivative
            size = 0 if (ro and usd == 0) else lots_for(m, max(usd, 1) * 1_000 * USD)
            tp = px_of(m, bps)
            lim = 0 if is_market else px_of(m, bps + (50 if is_buy else -50))
            return [c.sign(t, tx.PlaceTrigger(m, is_buy, size, tp, 1 if (bps > 0) == is_buy else 0, is_market, lim,
                                              ro, None))]
        if kind == "fut":
            lots = lots_for(FUT, step[3] * 1_000 * USD)
            return [c.sign(t, tx.PlaceOrder(FUT, step[2], px_of(FUT, 300 if step[2] else -300), lots, tx.Tif.IOC,
                                            False, None))]
        if kind == "fut_quote":
            out = []
            for j, mk in enumerate(MAKERS):
                orders = []
                for i in range(1, 4):
                    off = max(1, ticks_btc * (3 * i + j) // 1000)
                    orders.append(tx.PlaceOrder(FUT, True, ticks_btc - off, 5_000, tx.Tif.GTC, False, None))
                    orders.append(tx.PlaceOrder(FUT, False, ticks_btc + off, 5_000, tx.Tif.GTC, False, None))
                    orders.append(tx.PlaceOrder(ETH_PERP, True, ticks_eth - off // 20 - 1, 20_000, tx.Tif.GTC, False, None))
                    orders.append(tx.PlaceOrder(ETH_PERP, False, ticks_eth + off // 20 + 1, 20_000, tx.Tif.GTC, False, None))
                out.append(c.sign(mk, tx.Batch(tuple(orders))))
            return out
        if kind == "agent":
            ag = AGENTS[step[1] % len(AGENTS)]
            return [c.sign(t, tx.ApproveAgent(ag.address, "a", 0))]
        if kind == "agent_act":
            ag = AGENTS[step[1] % len(AGENTS)]
            other = TRADERS[(step[1] + 1) % len(TRADERS)]
            acts: list[Any] = [tx.Withdraw(USDC, 1_000 * USD, b"x"), tx.Transfer(ag.address, USDC, 1_000 * USD),
                               tx.Borrow(USDC, 1_000 * USD), tx.Lend(USDC, False),
                               tx.ActAs(sub_account_address(t.address, "s0"), tx.Transfer(ag.address, USDC, 1)),
                               tx.SetMarginMode(BTC_PERP, True), tx.UpdateIsolatedMargin(BTC_PERP, -1_000 * USD),
                               tx.CreateSubAccount("z"), tx.ApproveAgent(other.address, "b", 0),
                               tx.PlaceOrder(BTC_PERP, True, ticks_btc, 100, tx.Tif.GTC, False, None)]
            return [c.sign(ag, acts[step[2] % len(acts)])]
        if kind == "closing_stack":  # many closing orders of the whole position at once
            acct = c.ex.accounts.get(t.address)
            if acct is None:
                return []
            out = []
            for m, pos in sorted(acct.positions.items()):
                if pos.size:
                    orders = tuple(tx.PlaceOrder(m, pos.size < 0, px_of(m, 10 if pos.size < 0 else -10), abs(pos.size),
                                                 tx.Tif.GTC, False, None) for _ in range(step[2] % 8 + 1))
                    out.append(c.sign(t, tx.Batch(orders)))
            return out
        if kind == "offmkt":  # any trader, any derivative or spot market, any price in the band, GTC or IOC, maybe reduce-only
            m = ALL_M[step[2] % len(ALL_M)]
            spec = c.ex.markets[m]
            acct = c.ex.accounts.get(t.address)
            pos = acct.positions.get(m) if acct else None
            size = abs(pos.size) if (pos is not None and pos.size and step[6]) else lots_for(m, step[5] * 1_000 * USD)
            is_buy = (pos.size < 0) if (pos is not None and pos.size and step[6]) else step[3]
            return [c.sign(t, tx.PlaceOrder(m, is_buy, px_of(m, step[4]), size, tx.Tif.IOC if step[7] else tx.Tif.GTC,
                                            step[8] and spec.is_derivative, None))]
        if kind == "idle_drain":  # a supplier sells its lent-out ETH to an auto-lend-off account, which withdraws it
            borrower, twin = TRADERS[(step[1] + 1) % len(TRADERS)], TRADERS[(step[1] + 2) % len(TRADERS)]
            amount = step[2] * 10**7  # tenths of an ETH
            lots = amount // c.ex.markets[ETH_SPOT].lot_size
            return [self._deposit(t, ETH, amount), c.sign(borrower, tx.Borrow(ETH, amount * 9 // 10)),
                    c.sign(twin, tx.Lend(ETH, False)),
                    c.sign(twin, tx.PlaceOrder(ETH_SPOT, True, px_of(ETH_SPOT), lots, tx.Tif.GTC, False, None)),
                    c.sign(t, tx.PlaceOrder(ETH_SPOT, False, px_of(ETH_SPOT), lots, tx.Tif.IOC, False, None)),
                    c.sign(twin, tx.Withdraw(ETH, amount, b"o"))]
        if kind == "gtt":  # good-til-time orders near or through the mid, lapsing within a few blocks
            m = ALL_M[step[2] % len(ALL_M)]
            lots = lots_for(m, step[5] * 1_000 * USD)
            orders = tuple(tx.PlaceOrder(m, step[3], px_of(m, step[4] + j), lots, tx.Tif(step[7]), False, None,
                                         c.time + 1_000 * step[6]) for j in range(step[8]))
            who = t if step[9] == 0 else None
            if who is None:  # its isolated account or a sub-account acts
                target = (isolated_address(t.address, DERIVS[step[2] % 3]) if step[9] == 1
                          else sub_account_address(t.address, "s0"))
                return [c.sign(t, tx.ActAs(target, tx.Batch(orders)))]
            return [c.sign(who, tx.Batch(orders))]
        if kind == "dead_soon":  # a dead-man switch due within a few blocks
            return [c.sign(t, tx.ScheduleCancel(c.time + 1_000 * step[2] + step[3]))]
        if kind == "gtt_touch":  # modify or cancel one of its own resting orders, maybe one that has lapsed
            acct = c.ex.accounts.get(t.address)
            if acct is None or not acct.open_orders:
                return []
            oids = sorted(acct.open_orders)
            oid = oids[step[2] % len(oids)]
            o = c.ex.books[acct.open_orders[oid]].orders[oid]
            if step[3] == 0:
                return [c.sign(t, tx.Cancel(o.market, oid, None))]
            if step[3] == 1:  # shrink in place
                return [c.sign(t, tx.Modify(o.market, oid, None, o.price, max(1, o.size // 2)))]
            return [c.sign(t, tx.Modify(o.market, oid, None, max(1, o.price * (10_000 + step[4]) // 10_000),
                                        o.size + step[5]))]
        if kind == "spot_under_perp":  # perp asks (maybe lapsing soon), then a sale of part of the spot holding
            acct = c.ex.accounts.get(t.address)
            spot, perp, asset = (ETH_SPOT, ETH_PERP, ETH) if step[2] else (BTC_SPOT, BTC_PERP, BTC)
            out = [c.sign(t, tx.PlaceOrder(perp, False, px_of(perp, step[3]), lots_for(perp, step[4] * 1_000 * USD),
                                           tx.Tif.GTC, False, None, c.time + 1_000 * step[5] if step[5] else None))]
            bal = acct.balance(asset) if acct is not None else 0
            lots = bal * step[6] // 100 // c.ex.markets[spot].lot_size
            if lots > 0:
                out.append(c.sign(t, tx.PlaceOrder(spot, False, px_of(spot, -step[7]), lots, tx.Tif.IOC, False, None)))
            return out
        if kind == "wd_all":
            acct = c.ex.accounts.get(t.address)
            if acct is None:
                return []
            return [c.sign(t, tx.Withdraw(a, max(1, v), b"o")) for a, v in sorted(acct.balances.items()) if v > 0]
        return super().txs_for(step)


def draw_step(rng: random.Random) -> tuple[Any, ...]:
    i = rng.randrange(6)
    b = rng.random() < 0.5
    k = rng.choice(["iso_on", "iso_off", "iso_margin", "iso_actas", "iso_order", "sub_create", "sub_fund",
                    "sub_back", "sub_trade", "xfer", "lev", "trig", "fut", "fut_quote", "agent", "agent_act",
                    "closing_stack", "wd_all", "offmkt", "offmkt", "offmkt", "eth_oracle", "oracle", "quote", "perp", "spot_margin", "borrow",
                    "repay", "idle", "wash", "pull", "withdraw", "extreme", "idle_drain", "gtt", "gtt", "dead_soon", "gtt_touch", "gtt_touch", "spot_under_perp"])
    if k == "iso_on" or k == "iso_off":
        return (k, i, rng.randrange(3))
    if k == "iso_margin":
        return (k, i, rng.randrange(3), rng.choice([rng.randint(-60, 60), rng.randint(100, 108) * rng.choice([1, -1])]))
    if k in ("iso_actas", "sub_trade"):
        return (k, i, rng.randrange(3), rng.randrange(5), b, rng.randint(1, 400))
    if k == "iso_order":
        return (k, i, rng.randrange(3), b, rng.randint(1, 400))
    if k == "sub_create":
        return (k, i, rng.randrange(2))
    if k == "sub_fund":
        return (k, i, rng.randrange(2), rng.randint(0, 50))
    if k == "sub_back":
        return (k, i, rng.randrange(2), rng.randrange(len(EXTREMES)))
    if k == "xfer":
        return (k, i, rng.randrange(6), rng.randrange(3), rng.randrange(len(EXTREMES)))
    if k == "lev":
        return (k, i, rng.randrange(3), rng.choice([0, 1, 2, 3, 5, 10, 20, 21, 1000]))
    if k == "trig":
        return (k, i, rng.randrange(5), b, rng.randint(-1500, 1500), rng.random() < 0.5, rng.random() < 0.5,
                rng.randint(0, 300))
    if k == "fut":
        return (k, i, b, rng.randint(1, 400))
    if k == "fut_quote":
        return (k,)
    if k == "agent":
        return (k, i)
    if k == "agent_act":
        return (k, i, rng.randrange(10))
    if k == "closing_stack":
        return (k, i, rng.randrange(8))
    if k == "wd_all":
        return (k, i)
    if k == "gtt":
        return (k, i, rng.randrange(5), b, rng.randint(-40, 40), rng.randint(1, 60), rng.randint(0, 4),
                rng.choice([0, 0, 1, 2]), rng.randint(1, 12), rng.choice([0, 0, 0, 1, 2]))
    if k == "gtt_touch":
        return (k, i, rng.randrange(64), rng.randrange(3), rng.randint(-300, 300), rng.randint(-5, 200))
    if k == "spot_under_perp":
        return (k, i, rng.randrange(2), rng.randint(-100, 600), rng.randint(1, 400), rng.choice([0, 0, 2, 4]),
                rng.randint(1, 100), rng.randint(0, 300))
    if k == "dead_soon":
        return (k, i, rng.randint(5, 9), rng.choice([0, 1, 999]))
    if k == "idle_drain":
        return (k, i, rng.randint(1, 50))
    if k == "offmkt":
        return (k, i, rng.randrange(5), b, rng.randint(-2100, 2100), rng.randint(1, 300), rng.random() < 0.5,
                rng.random() < 0.5, rng.random() < 0.3)
    if k == "eth_oracle":
        return (k, rng.randint(-1000, 600))
    if k == "oracle":
        return (k, rng.randint(-1000, 600))
    if k == "quote":
        return (k, rng.randint(1, 5), rng.randint(1, 40))
    if k == "perp":
        return (k, i, b, rng.randint(1, 20))
    if k == "spot_margin":
        return (k, i, rng.randint(1, 30))
    if k == "borrow":
        return (k, i, rng.choice([USDC, BTC]), rng.randint(1, 100))
    if k == "repay":
        return (k, i)
    if k == "idle":
        return (k, rng.choice([1, 60, 3600, 3 * 3600, 20_000]))
    if k == "wash":
        return (k, i, rng.randrange(6), rng.randint(-500, 1000))
    if k == "pull":
        return (k,)
    if k == "withdraw":
        return (k, rng.randrange(10), rng.choice([USDC, BTC]), rng.randint(0, 62))
    if k == "extreme":
        return (k, i, rng.randrange(6))
    raise AssertionError(k)


def one_flow(seed: int, restart: bool) -> tuple[Ext, list[Any]]:
    rng = random.Random(seed)
    fundseed = rng.choice([0, 1_000_000 * USD])
    adv = Ext.open(markets=MARKETS, **({"insurance_fund": fundseed} if fundseed else {}))
    adv.step_block([("fut_quote",)])
    opening = [(rng.random() < 0.5, rng.randint(0, 20), rng.randint(0, 30)) for _ in TRADERS]
    path = [rng.randint(-800, 300) for _ in range(rng.randint(0, 5))]
    blocks = [[draw_step(rng) for _ in range(rng.randint(1, 7))] for _ in range(rng.randint(5, 25))]
    flow = (opening, path, blocks)
    adv.run(flow)
    if restart:
        k = rng.randint(1, 5)
        with tempfile.TemporaryDirectory() as d:
            node = Chain(d, genesis=adv.chain.genesis)
            for blk, result in zip(adv.chain.blocks, adv.results, strict=True):
                got = node.sm.apply_block(blk)
                assert got.app_hash == result.app_hash, f"restart: app hash differs at height {blk.height}"
                if blk.height % k == 0:
                    node.reopen()
                    assert node.sm.app_hash == result.app_hash
                    assert node.sm.stored_records() == node.ex.snapshot_records(), f"store != memory h{blk.height}"
            assert node.sm.state_digest() == adv.chain.sm.state_digest()
            node.sm.close()
    return adv, blocks


if __name__ == "__main__":  # a long campaign: python -m tests.state.extended_adversary N SEED [restart] [lapse]
    n, seed0, restart = int(sys.argv[1]), int(sys.argv[2]), "restart" in sys.argv[3:]
    if "lapse" in sys.argv[3:]:  # tiny lapse budgets: every lapsed order waits on the book for a while
        lifetimes.SWEEP_BUDGET, lifetimes.TX_LAPSE_BUDGET = 2, 3  # type: ignore[misc]
    found: list[str] = []
    machine.apply_tx = checking(machine.apply_tx, found)
    handlers._run_one = checking_pools(handlers._run_one, found)
    fails = 0
    for s in range(seed0, seed0 + n):
        found.clear()
        try:
            one_flow(s, restart)
        except Exception as e:
            fails += 1
            print(f"SEED {s} FAIL: {type(e).__name__}: {str(e)[:400]}")
            traceback.print_exc(limit=4)
            continue
        for v in found[:4]:
            print(f"SEED {s}: {v}")
        sys.stdout.flush()
    print(f"done {n} flows from seed {seed0}, {fails} failures")
