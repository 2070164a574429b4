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

The measurement (``compare``): the two flows are signed once, decoded into the mempool's
verified cache (signatures are valid by construction: a sample is verified, and timed, as
libsodium's one-core verify rate), then applied on fresh chains interleaved A B A B ...
(the best run of each counts: noise on a shared machine only slows a run). A third flow,
the price walk without triggers, splits the cost between the moving oracle and the
triggers themselves. Every run of a flow must reach the same app hash (checked).
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
from state.tx import OraclePrices, PlaceTrigger, SignedTx, decode_tx, sign_tx
from state.trigbook import SL
from state.units import PPM

VALIDATOR = PrivateKey(b"\x09" * 32)
WARMUP_BLOCKS = 2  # build resting liquidity (and a first price move) before the timed blocks


class TriggerFlowGenerator(FlowGenerator):
    """The current mix plus trigger orders and a per-block oracle move (module doc)."""

    def __init__(self, keys: list[PrivateKey], genesis: Genesis, validator: PrivateKey = VALIDATOR, seed: int = 7,
                 trigger_pct: int = 10, move_ppm: int = 10_000, bound_ppm: int = 80_000) -> None:
        super().__init__(keys, seed)
        self.genesis = genesis
        self.validator = validator
        self.trng = random.Random(seed * 1_000_003 + 1)  # its own stream: the base mix's draws stay as they were
        self.trigger_pct = trigger_pct
        self.move_ppm = move_ppm
        self.bound_ppm = bound_ppm
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
              seed: int = 7) -> Flow:
    """``trigger_pct`` None: the current flow (no oracle transaction either); a number: the
    price walk with that share of trigger orders."""
    genesis, keys, _sm = make_chain(n_accounts, None, validator=VALIDATOR)
    t = time.perf_counter()
    if trigger_pct is None:
        gen = FlowGenerator(keys, seed)
        blocks = [[gen.signed(CHAIN) for _ in range(block_size)] for _ in range(n_blocks + WARMUP_BLOCKS)]
        trig: frozenset[bytes] = frozenset()
    else:
        tgen = TriggerFlowGenerator(keys, genesis, seed=seed, trigger_pct=trigger_pct)
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
    figures are over the blocks after the warm-up."""
    with tempfile.TemporaryDirectory() as d:
        _genesis, _keys, sm = make_chain(n_accounts, d, validator=VALIDATOR)
        now = T0 + 1000
        for i in range(WARMUP_BLOCKS):
            sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(flow.blocks[i])), flow.cache)
        tune_for_throughput()
        per_block: list[float] = []
        fills = rejected = placed = fired = fire_rejected = oracle_bad = 0
        for i in range(WARMUP_BLOCKS, len(flow.blocks)):
            raws = tuple(flow.blocks[i])
            t = time.perf_counter()
            res = sm.apply_block(ExecBlock(sm.height + 1, now + i, raws), flow.cache)
            per_block.append(time.perf_counter() - t)
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
    n = len(per_block)
    txs = sum(len(b) for b in flow.blocks[WARMUP_BLOCKS:])
    return {
        "tx_per_s": txs / sum(per_block),
        "block_apply_ms_p50": sorted(per_block)[n // 2] * 1000,
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
            sig_n: int = 5_000) -> dict[str, Any]:
    """The current flow (A), the trigger flow (B) and the price walk alone (C) applied on
    fresh chains interleaved A B C A B C ...; the best tx/s of each counts."""
    flows = [make_flow("current", n_blocks, block_size, n_accounts, None),
             make_flow("triggers", n_blocks, block_size, n_accounts, trigger_pct),
             make_flow("moves_only", n_blocks, block_size, n_accounts, 0)]
    sodium = libsodium_rate(flows[0], sig_n)
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for flow in flows:
            r = run_flow(flow, n_accounts)
            old = best.get(flow.name)
            if old is not None:
                assert old["app_hash"] == r["app_hash"], f"{flow.name}: two runs of one flow reached different states"
            if old is None or r["tx_per_s"] > old["tx_per_s"]:
                best[flow.name] = r
    a, b, c = best["current"], best["triggers"], best["moves_only"]
    out: dict[str, Any] = {"blocks": n_blocks, "block_size": block_size, "accounts": n_accounts, "repeats": repeats,
                           "trigger_pct": trigger_pct, "sig_verify_per_s_libsodium_1core": sodium}
    for name, r in best.items():
        out.update({f"{name}_{k}": v for k, v in r.items()})
    out["ratio_triggers_to_current"] = b["tx_per_s"] / a["tx_per_s"]
    out["cost_pct"] = 100 * (1 - b["tx_per_s"] / a["tx_per_s"])
    out["cost_pct_price_moves"] = 100 * (1 - c["tx_per_s"] / a["tx_per_s"])
    out["cost_pct_triggers_alone"] = 100 * (1 - b["tx_per_s"] / c["tx_per_s"])
    out["sign_per_s_1core"] = sum(len(blk) for blk in flows[1].blocks) / flows[1].sign_s
    return out


def table_rows(r: dict[str, Any]) -> list[tuple[str, Any, str]]:
    return [
        ("current flow: apply_block tx/s (sigs pre-verified, LevelDB commit)", r["current_tx_per_s"], "tx/s"),
        (f"trigger flow ({r['trigger_pct']}% triggers, ~1% oracle move per block): tx/s",
         r["triggers_tx_per_s"], "tx/s"),
        ("price walk only (no triggers): tx/s", r["moves_only_tx_per_s"], "tx/s"),
        ("ratio trigger flow / current flow", r["ratio_triggers_to_current"], "x"),
        ("cost of the trigger flow (1 - ratio)", r["cost_pct"], "%"),
        ("  of which the price walk (moves only vs current)", r["cost_pct_price_moves"], "%"),
        ("  of which the triggers (trigger flow vs moves only)", r["cost_pct_triggers_alone"], "%"),
        ("block apply p50, current / trigger flow (ms)",
         f"{r['current_block_apply_ms_p50']:.1f} / {r['triggers_block_apply_ms_p50']:.1f}", "ms"),
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
