"""The trigger-order flow of ``python -m bench.state_apply`` and its comparison with the
current flow (``--compare-triggers``).

Why: trigger orders (state/triggers.py) add work in three places: placement (checks,
the sorted per-market index, margin aggregates), every block end (the due scan of each
market's index after the marks move) and firing (a new order through matching). The
issue's budget is that a realistic share of them costs under 10% of ``apply_block``
throughput, so the bench measures exactly that, against the current flow, in one run.

The trigger flow: each block starts with an ``OraclePrices`` transaction from the genesis
validator moving BTC and ETH by ~1% (a seeded random walk, each step 0.5%..1.5%, its sign
flipped when it would leave ``bound_ppm`` of the start price: the book of the order flow
stays at fixed mids, so the walk must keep its limit prices inside the markets' 20% price
band). The rest is the current mix (``FlowGenerator``) with ``trigger_pct``% of the
transactions replaced by ``PlaceTrigger``: 3/4 on perps, stop-loss and take-profit, buy
and sell, half market and half limit (limit 0.5% past the trigger), 40% of the perp ones
reduce-only, trigger prices 0.2%..3% from the current price on the side where they wait
(a buy stop above, a buy take-profit below...), so a share fires as the price walks.

The measurement (``compare``): the flows are signed once, decoded into the mempool's
verified cache (signatures are valid by construction: a sample is verified, and timed, as
libsodium's one-core verify rate), then applied on fresh chains interleaved A B C A B C ...
after one untimed round; each block's best time over the rounds counts (noise on a shared
machine only slows a block). A: the current flow; B: the trigger flow; C: the price walk
without triggers (B vs C is the triggers' own cost); with ``breakdown``, D: B's triggers
placed out of the walk's reach (D vs C: placing and carrying them; B vs D: firing them).
Every run of a flow must reach the same app hash (checked). Figures and where the cost
goes: docs/performance.md, "Trigger orders".
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from bench.state_apply import CHAIN, T0, FlowGenerator, make_chain
from node.gctune import tune_for_throughput
from state.genesis import Genesis, MarketSpec
from state.keys import PrivateKey
from state.machine import ExecBlock
from state.receipts import Cancelled
from state.trigbook import SL
from state.tx import OraclePrices, PlaceTrigger, SignedTx, decode_tx, sign_tx
from state.units import PPM

VALIDATOR = PrivateKey(b"\x09" * 32)
WARMUP_BLOCKS = 2  # build resting liquidity (and a first price move) before the timed blocks


class TriggerFlowGenerator(FlowGenerator):
    """The current mix plus trigger orders and a per-block oracle move (module doc)."""

    def __init__(self, keys: list[PrivateKey], genesis: Genesis, validator: PrivateKey = VALIDATOR, seed: int = 7,
                 trigger_pct: int = 10, move_ppm: int = 10_000, bound_ppm: int = 80_000, never_fire: bool = False,
                 ) -> None:
        super().__init__(keys, seed)
        self.genesis = genesis
        self.validator = validator
        self.trng = random.Random(seed * 1_000_003 + 1)  # its own stream: the base mix's draws stay as they were
        self.trigger_pct = trigger_pct
        self.move_ppm = move_ppm
        self.bound_ppm = bound_ppm
        self.never_fire = never_fire  # triggers beyond the walk's bound: placement and storage only
        self.start = {a: px for a, px in enumerate(genesis.initial_oracle_prices) if px}
        self.px = dict(self.start)  # the oracle price the walk is at (price units per whole unit)
        self.validator_nonce = T0
        self.perps = [m for m in genesis.markets if m.is_derivative]
        self.spots = [m for m in genesis.markets if not m.is_derivative]
        self.trigger_raws: set[bytes] = set()

    def _top(self, asset: int) -> int:
        """The asset's top oracle price: the lowest top price of its markets."""
        return min(m.max_price_ticks * m.tick_size for m in self.genesis.markets if m.base == asset)

    def oracle_action(self) -> OraclePrices:
        """One step of the walk for every priced asset, in asset order."""
        rng = self.trng
        out = []
        for asset in sorted(self.px):
            px, start = self.px[asset], self.start[asset]
            step = px * rng.randint(self.move_ppm // 2, self.move_ppm * 3 // 2) // PPM
            if rng.random() < 0.5:
                step = -step
            if abs(px + step - start) * PPM > self.bound_ppm * start:
                step = -step  # reflect at the bound
            self.px[asset] = min(max(px + step, 1), self._top(asset))
            out.append((asset, self.px[asset]))
        return OraclePrices(tuple(out))

    def trigger_action(self) -> tuple[PrivateKey, PlaceTrigger]:
        rng = self.trng
        who = rng.randrange(len(self.keys))
        market: MarketSpec = rng.choice(self.perps) if rng.random() < 0.75 or not self.spots else rng.choice(self.spots)
        cur = self.px[market.base] // market.tick_size  # the reference, in ticks (a perp's mark is near it)
        is_buy = rng.random() < 0.5
        tpsl = rng.randrange(2)
        rises = (tpsl == SL) == is_buy  # fires when the price rises to it (state/trigbook.py)
        if self.never_fire:  # 0.2%..1% beyond the walk's bound from the start price (inside the 20% band)
            cur = self.start[market.base] // market.tick_size
            dist = cur * (self.bound_ppm + rng.randint(2_000, 10_000)) // PPM
        else:
            dist = cur * rng.randint(2_000, 30_000) // PPM
        trigger = cur + dist if rises else cur - dist
        is_market = rng.random() < 0.5
        limit = 0 if is_market else trigger + (trigger * 5_000 // PPM) * (1 if is_buy else -1)
        reduce_only = market.is_derivative and rng.random() < 0.4
        # at least twice the minimum notional at the current price (the walk may fall 8%)
        lo = max(2, -(-2 * market.min_notional // (cur * market.tick_value)))
        size = rng.randint(lo, lo + 18)
        return self.keys[who], PlaceTrigger(market.market_id, is_buy, size, trigger, tpsl, is_market, limit,
                                            reduce_only, None)

    def block(self, chain_id: str, size: int) -> list[bytes]:
        """A block of ``size`` signed transactions: the oracle move first, then the mix."""
        self.validator_nonce += 1
        raws = [sign_tx(self.validator, self.validator_nonce, self.oracle_action(), chain_id)]
        for _ in range(size - 1):
            if self.trng.randrange(100) < self.trigger_pct:
                key, action = self.trigger_action()
                self.nonce[key.pubkey] += 1
                raw = sign_tx(key, self.nonce[key.pubkey], action, chain_id)
                self.trigger_raws.add(raw)
            else:
                raw = self.signed(chain_id)
            raws.append(raw)
        return raws


@dataclass
class Flow:
    """A flow's signed blocks and their decoded transactions (the mempool's cache)."""

    name: str
    blocks: list[list[bytes]]
    triggers: frozenset[bytes] = frozenset()
    cache: dict[bytes, SignedTx] = field(default_factory=dict)
    sign_s: float = 0.0


def make_flow(name: str, n_blocks: int, block_size: int, n_accounts: int, trigger_pct: int | None,
              seed: int = 7, never_fire: bool = False) -> Flow:
    """``trigger_pct`` None: the current flow (no oracle transaction either); a number: the
    price walk with that share of trigger orders (``never_fire``: placed out of its reach)."""
    genesis, keys, _sm = make_chain(n_accounts, None, validator=VALIDATOR)
    t = time.perf_counter()
    if trigger_pct is None:
        gen = FlowGenerator(keys, seed)
        blocks = [[gen.signed(CHAIN) for _ in range(block_size)] for _ in range(n_blocks + WARMUP_BLOCKS)]
        trig: frozenset[bytes] = frozenset()
    else:
        tgen = TriggerFlowGenerator(keys, genesis, seed=seed, trigger_pct=trigger_pct, never_fire=never_fire)
        blocks = [tgen.block(CHAIN, block_size) for _ in range(n_blocks + WARMUP_BLOCKS)]
        trig = frozenset(tgen.trigger_raws)
    sign_s = time.perf_counter() - t
    # decoded without the signature check: every signature is valid by construction, and
    # the bench measures apply_block with signatures pre-verified (a sample is verified in
    # ``libsodium_rate``)
    cache = {raw: decode_tx(raw) for b in blocks for raw in b}
    return Flow(name, blocks, trig, cache, sign_s)


def run_flow(flow: Flow, n_accounts: int) -> dict[str, Any]:
    """Apply ``flow`` on a fresh chain (LevelDB, committed as a node commits); the timed
    figures are over the blocks after the warm-up: per block, the wall time and the main
    thread's CPU time (which other load on a shared machine does not inflate)."""
    with tempfile.TemporaryDirectory() as d:
        _genesis, _keys, sm = make_chain(n_accounts, d, validator=VALIDATOR)
        now = T0 + 1000
        for i in range(WARMUP_BLOCKS):
            sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(flow.blocks[i])), flow.cache)
        tune_for_throughput()
        wall: list[float] = []
        cpu: list[float] = []
        fills = rejected = placed = fired = fire_rejected = oracle_bad = 0
        for i in range(WARMUP_BLOCKS, len(flow.blocks)):
            raws = tuple(flow.blocks[i])
            t, c = time.perf_counter(), time.thread_time()
            res = sm.apply_block(ExecBlock(sm.height + 1, now + i, raws), flow.cache)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - t)
            fills += sum(len(a.fills) for r in res.receipts for a in r.results)
            rejected += sum(1 for r in res.receipts if r.code != 0)
            if flow.triggers:
                placed += sum(1 for raw, r in zip(raws, res.receipts, strict=True) if r.code == 0 and raw in flow.triggers)
                oracle_bad += res.receipts[0].code != 0
            for _, e in res.events:
                if isinstance(e, tuple) and e[0] == "triggered":
                    fired += 1
                elif isinstance(e, Cancelled) and e.reason == "trigger_rejected":
                    fire_rejected += 1
        waiting = len(sm.ex.triggers)
        app_hash = sm.app_hash.hex()
        sm.close()
    n = len(wall)
    return {
        "wall": wall, "cpu": cpu,
        "fills_per_block": fills / n,
        "rejected_per_block": rejected / n,
        "triggers_placed_per_block": placed / n,
        "triggers_fired_per_block": fired / n,
        "triggers_rejected_at_fire_per_block": fire_rejected / n,
        "triggers_waiting_after": waiting,
        "oracle_rejected": oracle_bad,
        "app_hash": app_hash,
    }


def libsodium_rate(flow: Flow, n: int, repeats: int = 3) -> float:
    """libsodium (PyNaCl), one core, one signature at a time, over the first ``n``
    transactions of ``flow`` (all must verify); the best of ``repeats``."""
    txs = [flow.cache[raw] for b in flow.blocks for raw in b][:n]
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        ok = sum(1 for tx in txs if tx.verify_signature(CHAIN))
        best = max(best, len(txs) / (time.perf_counter() - t))
        assert ok == len(txs), "a generated signature does not verify"
    return best


def compare(n_blocks: int, block_size: int, n_accounts: int, repeats: int = 3, trigger_pct: int = 10,
            sig_n: int = 5_000, breakdown: bool = False) -> dict[str, Any]:
    """The current flow (A), the trigger flow (B) and the price walk alone (C) applied on
    fresh chains interleaved A B C A B C ... after one untimed run of each. Every run of a
    flow applies the same blocks to the same state (the app hashes are checked), so each
    block's best time over the repeats is its cost without the noise of a shared machine;
    tx/s = the flow's timed transactions / the sum of those best times (wall, and the main
    thread's CPU time). With ``breakdown``, a fourth flow (D) places the same share of
    triggers out of the walk's reach: D vs C is placing and storing them, B vs D firing."""
    flows = [make_flow("current", n_blocks, block_size, n_accounts, None),
             make_flow("triggers", n_blocks, block_size, n_accounts, trigger_pct),
             make_flow("moves_only", n_blocks, block_size, n_accounts, 0)]
    if breakdown:
        flows.append(make_flow("never_fire", n_blocks, block_size, n_accounts, trigger_pct, never_fire=True))
    sodium = libsodium_rate(flows[0], sig_n)
    runs: dict[str, list[dict[str, Any]]] = {f.name: [] for f in flows}
    for rep in range(repeats + 1):
        for flow in flows:
            r = run_flow(flow, n_accounts)
            if rep:  # the first round warms the process up (allocator, caches) and is not timed
                runs[flow.name].append(r)
            assert r["app_hash"] == (runs[flow.name] or [r])[0]["app_hash"], \
                f"{flow.name}: two runs of one flow reached different states"
    out: dict[str, Any] = {"blocks": n_blocks, "block_size": block_size, "accounts": n_accounts, "repeats": repeats,
                           "trigger_pct": trigger_pct, "sig_verify_per_s_libsodium_1core": sodium}
    for flow in flows:
        rs = runs[flow.name]
        txs = sum(len(b) for b in flow.blocks[WARMUP_BLOCKS:])
        for clock in ("wall", "cpu"):
            best = [min(r[clock][i] for r in rs) for i in range(n_blocks)]
            out[f"{flow.name}_tx_per_s_{clock}"] = txs / sum(best)
            out[f"{flow.name}_block_ms_p50_{clock}"] = sorted(best)[n_blocks // 2] * 1000
        out[f"{flow.name}_tx_per_s_best_run_wall"] = max(txs / sum(r["wall"]) for r in rs)
        out.update({f"{flow.name}_{k}": v for k, v in rs[0].items() if k not in ("wall", "cpu")})
    for clock in ("wall", "cpu"):
        a, b, c = (out[f"{n}_tx_per_s_{clock}"] for n in ("current", "triggers", "moves_only"))
        out[f"ratio_triggers_to_current_{clock}"] = b / a
        out[f"cost_pct_{clock}"] = 100 * (1 - b / a)
        out[f"cost_pct_price_moves_{clock}"] = 100 * (1 - c / a)
        out[f"cost_pct_triggers_alone_{clock}"] = 100 * (1 - b / c)
        if breakdown:
            d = out[f"never_fire_tx_per_s_{clock}"]
            out[f"cost_pct_placing_{clock}"] = 100 * (1 - d / c)
            out[f"cost_pct_firing_{clock}"] = 100 * (1 - b / d)
    out["sign_per_s_1core"] = sum(len(blk) for blk in flows[1].blocks) / flows[1].sign_s
    return out


def table_rows(r: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """The rows of the comparison table (wall clock, and the main thread's CPU time)."""
    rows: list[tuple[str, Any, str]] = []
    for clock, what in (("wall", "wall clock"), ("cpu", "main thread CPU time")):
        rows += [
            (f"current flow: apply_block tx/s ({what}; sigs pre-verified, LevelDB commit)",
             r[f"current_tx_per_s_{clock}"], "tx/s"),
            (f"trigger flow ({r['trigger_pct']}% triggers, ~1% oracle move per block): tx/s ({what})",
             r[f"triggers_tx_per_s_{clock}"], "tx/s"),
            (f"price walk only (no triggers): tx/s ({what})", r[f"moves_only_tx_per_s_{clock}"], "tx/s"),
            (f"ratio trigger flow / current flow ({what})", f"{r[f'ratio_triggers_to_current_{clock}']:.3f}", "x"),
            (f"cost of the trigger flow, 1 - ratio ({what})", r[f"cost_pct_{clock}"], "%"),
            ("  of which the price walk (moves only vs current)", r[f"cost_pct_price_moves_{clock}"], "%"),
            ("  of which the triggers (trigger flow vs moves only)", r[f"cost_pct_triggers_alone_{clock}"], "%"),
        ]
        if f"cost_pct_placing_{clock}" in r:
            rows += [
                (f"triggers placed out of reach (never fire): tx/s ({what})", r[f"never_fire_tx_per_s_{clock}"], "tx/s"),
                ("    placing and storing them (never-fire vs moves only)", r[f"cost_pct_placing_{clock}"], "%"),
                ("    firing them (trigger flow vs never-fire)", r[f"cost_pct_firing_{clock}"], "%"),
            ]
    return [
        *rows,
        ("block apply p50, current / trigger flow (wall, best per block)",
         f"{r['current_block_ms_p50_wall']:.1f} / {r['triggers_block_ms_p50_wall']:.1f}", "ms"),
        ("triggers placed per block (accepted)", r["triggers_triggers_placed_per_block"], ""),
        ("triggers fired per block", r["triggers_triggers_fired_per_block"], ""),
        ("  of which rejected when fired (e.g. reduce-only, no position)",
         r["triggers_triggers_rejected_at_fire_per_block"], ""),
        ("triggers waiting after the run", r["triggers_triggers_waiting_after"], ""),
        ("fills per block, current / trigger flow",
         f"{r['current_fills_per_block']:.0f} / {r['triggers_fills_per_block']:.0f}", ""),
        ("rejected tx per block, current / trigger flow",
         f"{r['current_rejected_per_block']:.0f} / {r['triggers_rejected_per_block']:.0f}", ""),
        ("sig verify, 1 core (libsodium, one at a time)", r["sig_verify_per_s_libsodium_1core"], "/s"),
    ]
