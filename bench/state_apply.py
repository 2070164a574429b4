"""Benchmark the state machine: apply_block throughput, signature verification, memory,
and the portfolio-margin risk engine.

    python -m bench.state_apply [--blocks 20] [--block-size 2000] [--resting 1000000]
    python -m bench.state_apply --risk [--risk-accounts 100000]      # the risk engine only
    python -m bench.state_apply --resting 0 --blocks 10 --compare-triggers   # trigger orders' cost
    python -m bench.state_apply --resting 0 --blocks 10 --compare-hl   # Hyperliquid-signed vs native txs

``--risk`` measures (see ``bench_risk``): orders/s with margin checks on 1,000 and 100,000
accounts against the same flow with the risk engine switched off in this process (pre-trade
check and per-block steps stubbed: "bare matching"), the cost of a block in which the oracle
moves 10% over 100,000 leveraged accounts (trigger scan + liquidations), and the per-block
cost of interest accrual and of a funding settlement.

Flow: 1,000 funded accounts on 4 markets (BTC/ETH spot and perps); about 60% limit orders
within a few ticks of the mid, 25% cancels (by client order id, of orders that may or may
not still rest), 15% IOC orders that cross. Transactions are really signed, then decoded
and verified into the cache exactly as the mempool does, so ``orders_per_s`` measures
``apply_block`` including the LevelDB commit with signatures pre-verified. The state
batch is committed as a node commits it: fsynced every 100th block, the node's block
store being the synced record (``StateMachine``); ``--sync-state`` fsyncs every block.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from bench.common import current_rss_mb, peak_rss_mb, print_table, write_json
from devnet.genesis import DEVNET_PRICES
from node.gctune import tune_for_throughput
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey, address_to_text
from state.machine import ExecBlock, StateMachine, decode_verified
from state.tx import Cancel, PlaceOrder, SignedTx, Tif, sign_tx

CHAIN = "bookchain-bench"
T0 = 1_700_000_000_000
MIDS = {0: 60_000, 1: 30_000, 2: 60_000, 3: 30_000}


def make_chain(n_accounts: int, path: str | None, *, sync_commits: bool = False,
               validator: PrivateKey | None = None) -> tuple[Genesis, list[PrivateKey], StateMachine]:
    """The benchmark chain, its state committed as a node commits it (``sync_commits``
    off: the node's block store is the synced record, see ``StateMachine``). With a
    ``validator`` key the genesis lists it, so that it may submit oracle prices (the
    trigger flow, bench/trigger_flow.py)."""
    keys = [PrivateKey(i.to_bytes(4, "big") * 8) for i in range(1, n_accounts + 1)]
    balances = []
    for k in keys:
        for asset, amount in (("USDC", 10**14), ("BTC", 10**12), ("ETH", 10**13)):
            balances.append({"address": address_to_text(k.address), "asset": asset, "amount": amount})
    validators = [] if validator is None else [{"name": "v0", "pubkey": validator.pubkey.hex(), "power": 1}]
    doc = make_genesis_doc(chain_id=CHAIN, validators=validators, bridge_pubkey=PrivateKey(b"\x01" * 32).pubkey,
                           balances=balances, genesis_time_ms=T0,
                           initial_oracle_prices=DEVNET_PRICES)  # the devnet's prices: the MIDS
    doc["limits"] = {"max_open_orders_per_account": 100_000}
    genesis = Genesis.from_json(doc)
    return genesis, keys, StateMachine.open(genesis, path, sync_commits=sync_commits)


class FlowGenerator:
    """Deterministic (seeded) mixed order flow."""

    def __init__(self, keys: list[PrivateKey], seed: int = 7) -> None:
        self.keys = keys
        self.rng = random.Random(seed)
        self.nonce = {k.pubkey: T0 for k in keys}
        self.resting: dict[int, list[tuple[int, bytes]]] = {i: [] for i in range(len(keys))}
        self.cloid_counter = 0

    def action(self) -> tuple[PrivateKey, Any]:
        rng = self.rng
        who = rng.randrange(len(self.keys))
        roll = rng.random()
        if roll < 0.25 and self.resting[who]:
            market, cloid = self.resting[who].pop(rng.randrange(len(self.resting[who])))
            return self.keys[who], Cancel(market, None, cloid)
        market = rng.randrange(4)
        is_buy = rng.random() < 0.5
        mid = MIDS[market]
        size = rng.randint(2, 20)
        if roll > 0.85:  # crossing IOC
            price = mid + 30 if is_buy else mid - 30
            return self.keys[who], PlaceOrder(market, is_buy, price, size, Tif.IOC, False, None)
        price = mid - rng.randint(1, 25) if is_buy else mid + rng.randint(1, 25)
        if rng.random() < 0.1:  # occasionally at/through the touch so limit orders also trade
            price = mid + (2 if is_buy else -2)
        self.cloid_counter += 1
        cloid = self.cloid_counter.to_bytes(16, "big")
        self.resting[who].append((market, cloid))
        return self.keys[who], PlaceOrder(market, is_buy, price, size, Tif.GTC, False, cloid)

    def signed(self, chain_id: str) -> bytes:
        key, action = self.action()
        self.nonce[key.pubkey] += 1
        return sign_tx(key, self.nonce[key.pubkey], action, chain_id)


def verify_many(raws: list[bytes], chain_id: str) -> dict[bytes, SignedTx]:
    out = {}
    for raw in raws:
        tx = decode_verified(raw, chain_id)
        out[tx.raw] = tx
    return out


def bench_apply(n_blocks: int, block_size: int, n_accounts: int, sync_commits: bool = False,
                flow: str = "orders") -> dict[str, Any]:
    """``flow`` "orders": the mix of the module doc; "triggers": the same with 10% trigger
    orders and an oracle move of ~1% per block (bench/trigger_flow.py)."""
    from bench.trigger_flow import VALIDATOR, TriggerFlowGenerator  # (it imports this module)

    with tempfile.TemporaryDirectory() as d:
        genesis, keys, sm = make_chain(n_accounts, d, sync_commits=sync_commits,
                                       validator=VALIDATOR if flow == "triggers" else None)
        gen = FlowGenerator(keys) if flow == "orders" else TriggerFlowGenerator(keys, genesis)

        def make_block() -> list[bytes]:
            if isinstance(gen, TriggerFlowGenerator):
                return gen.block(CHAIN, block_size)
            return [gen.signed(CHAIN) for _ in range(block_size)]

        t = time.perf_counter()
        blocks = [make_block() for _ in range(n_blocks + 2)]
        sign_s = time.perf_counter() - t
        all_raws = [r for b in blocks for r in b]
        t = time.perf_counter()
        cache = verify_many(all_raws, CHAIN)
        verify_s = time.perf_counter() - t
        # two warm-up blocks build resting liquidity, then the timed blocks
        now = T0 + 1000
        for i in range(2):
            sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(blocks[i])), cache)
        tune_for_throughput()  # the node's GC settings (node/gctune.py), as apply_block runs there
        per_block = []
        fills = rejected = 0
        for i in range(2, n_blocks + 2):
            t = time.perf_counter()
            res = sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(blocks[i])), cache)
            per_block.append(time.perf_counter() - t)
            fills += sum(len(a.fills) for r in res.receipts for a in r.results)
            rejected += sum(1 for r in res.receipts if r.code != 0)
        t = time.perf_counter()
        cold_block = make_block()
        t = time.perf_counter()
        sm.apply_block(ExecBlock(sm.height + 1, now + n_blocks + 5, tuple(cold_block)))
        cold_s = time.perf_counter() - t
        resting = sum(len(b.orders) for b in sm.ex.books.values())
        sm.close()
    total = sum(per_block)
    return {
        "orders_per_s": n_blocks * block_size / total,
        "block_apply_ms_p50": sorted(per_block)[len(per_block) // 2] * 1000,
        "block_apply_ms_max": max(per_block) * 1000,
        "orders_per_s_cold_decode_verify": block_size / cold_s,
        "fills_per_block": fills / n_blocks,
        "rejected_per_block": rejected / n_blocks,
        "resting_after": resting,
        "sign_per_s_1core": len(all_raws) / sign_s,
        "decode_verify_per_s_1core": len(all_raws) / verify_s,
    }


def bench_sigverify(n: int, threads: int, repeats: int = 3) -> dict[str, float]:
    from state.tx import decode_tx

    keys = [PrivateKey(i.to_bytes(4, "big") * 8) for i in range(1, 101)]
    gen = FlowGenerator(keys, seed=3)
    txs = [decode_tx(gen.signed(CHAIN)) for _ in range(n)]

    from node import sigbatch

    def check(chunk: list[SignedTx]) -> int:
        return sum(1 for tx in chunk if tx.verify_signature(CHAIN))

    def check_batched(chunk: list[SignedTx]) -> int:
        """As a node's verification threads do: chunks of 200 through node/sigbatch.py."""
        items = [tx.signature_item(CHAIN) for tx in chunk]
        return sum(sum(sigbatch.verify_many(items[i: i + 200])) for i in range(0, len(items), 200))

    chunks = [txs[i::threads] for i in range(threads)]
    best: dict[str, float] = {}
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):  # interleaved, best of each: other load on the machine hits all alike
            for name, fn in (("libsodium", check), ("batch", check_batched)):
                t = time.perf_counter()
                assert fn(txs) == n
                best[f"{name}_1"] = max(best.get(f"{name}_1", 0.0), n / (time.perf_counter() - t))
                t = time.perf_counter()
                assert sum(pool.map(fn, chunks)) == n
                best[f"{name}_n"] = max(best.get(f"{name}_n", 0.0), n / (time.perf_counter() - t))
    # the node's verifier is the batch one when it is built (sigbatch.backend() == "batch")
    node = "batch" if sigbatch.backend() == "batch" else "libsodium"
    one, many = best[f"{node}_1"], best[f"{node}_n"]
    crypto = bench_cryptography_verify(txs[:2000])
    contended = bench_verify_beside_python(txs[:4000], threads)
    raws = [tx.raw for tx in txs[:5000]]
    decode_s = min(_cpu_seconds(lambda: [decode_tx(r) for r in raws]) for _ in range(7))
    return {"sig_verify_per_s_1core": one, "sig_verify_per_s_all_cores": many,
            "sig_verify_per_s_libsodium_1core": best["libsodium_1"],
            "sig_verify_per_s_libsodium_all_cores": best["libsodium_n"],
            "sig_verify_cores": threads, "sig_verify_per_s_cryptography_1core": crypto,
            "decode_tx_us": decode_s / len(raws) * 1e6, **contended}


def bench_verify_beside_python(txs: list[SignedTx], threads: int) -> dict[str, Any]:
    """Verification on ``threads`` threads while one more thread runs Python, as a node's
    main thread does while it executes a block: wall µs per signature one call at a time
    (PyNaCl: the GIL is released and re-taken around every signature) and a batch per
    thread (node/sigbatch.py: one GIL release per batch)."""
    import threading

    from node import sigbatch
    from state.keys import verify_each

    items = [tx.signature_item(CHAIN) for tx in txs]
    chunks = [items[i: i + 200] for i in range(0, len(items), 200)]
    out: dict[str, Any] = {"sig_verify_backend": sigbatch.backend()}
    for name, fn in (("per_call", verify_each), ("batch", sigbatch.verify_many)):
        stop = threading.Event()

        def python_work(stop: threading.Event = stop) -> None:
            table: dict[int, int] = {}
            while not stop.is_set():
                for i in range(1000):
                    table[i] = table.get(i - 1, 0) + i

        busy = threading.Thread(target=python_work)
        busy.start()
        try:
            t = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                assert all(all(r) for r in pool.map(fn, chunks))
            out[f"sig_verify_beside_python_us_{name}"] = (time.perf_counter() - t) / len(items) * 1e6
        finally:
            stop.set()
            busy.join()
    return out


def _cpu_seconds(fn: Any) -> float:
    """Process CPU time of one call (the best of several is the figure: load only adds)."""
    t = time.process_time()
    fn()
    return time.process_time() - t


def bench_cryptography_verify(txs: list[SignedTx]) -> float:
    """The same signatures through pyca/cryptography, to justify using libsodium."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from state.keys import DOMAIN_TX, signing_message

    msgs = [(tx.pubkey, signing_message(DOMAIN_TX, CHAIN, tx.sign_payload()), tx.signature) for tx in txs]
    t = time.perf_counter()
    for pk, msg, sig in msgs:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    return len(msgs) / (time.perf_counter() - t)


def bench_resting(n_resting: int, n_accounts: int) -> dict[str, float]:
    """Peak RSS with ``n_resting`` orders on the books (in-memory machine, synthetic
    pre-verified transactions so that signing 1M orders doesn't dominate the run)."""
    _genesis, keys, sm = make_chain(n_accounts, None)
    base_rss = current_rss_mb()
    rng = random.Random(11)
    per_block = 10_000
    nonce = T0
    height_time = T0 + 1000
    placed = 0
    while placed < n_resting:
        raws, cache = [], {}
        for _ in range(min(per_block, n_resting - placed)):
            k = keys[rng.randrange(len(keys))]
            market = rng.randrange(4)
            is_buy = rng.random() < 0.5
            # bids below 50,000 ticks of mid, asks above: they never cross
            price = MIDS[market] - rng.randint(1, 5_000) if is_buy else MIDS[market] + rng.randint(1, 5_000)
            nonce += 1
            action = PlaceOrder(market, is_buy, price, 5, Tif.GTC, False, None)
            raw = nonce.to_bytes(8, "big")
            tx = SignedTx(k.pubkey, nonce, action, b"", raw, hashlib.sha256(raw).digest(), k.address)
            raws.append(raw)
            cache[tx.raw] = tx
            placed += 1
        sm.apply_block(ExecBlock(sm.height + 1, height_time, tuple(raws)), cache)
        height_time += 1
    resting = sum(len(b.orders) for b in sm.ex.books.values())
    return {"rss_mb_1m_resting": current_rss_mb(), "rss_mb_before_orders": base_rss,
            "rss_peak_mb": peak_rss_mb(), "resting_orders": resting}


# ---------------------------------------------------------------------------------- risk engine
@contextmanager
def bare_matching() -> Iterator[None]:
    """Switch the risk engine off in this process: no pre-trade margin check, no per-block
    steps (oracle, marks, funding, interest, liquidation scan). Only for measuring."""
    from state import machine, risk

    saved = (risk.must_afford_order, machine.begin_block, machine.end_block)

    def begin(ex: Any, t: int) -> None:
        ex.time_ms = t

    risk.must_afford_order = lambda *a, **k: 0  # type: ignore[assignment]
    machine.begin_block = begin  # type: ignore[assignment]
    machine.end_block = lambda ex: None
    try:
        yield
    finally:
        risk.must_afford_order, machine.begin_block, machine.end_block = saved


def synthetic_tx(k: PrivateKey, nonce: int, action: Any) -> tuple[bytes, SignedTx]:
    """A pre-verified transaction without a signature (setup only: signing 100k is slow)."""
    raw = nonce.to_bytes(8, "big") + k.address
    return raw, SignedTx(k.pubkey, nonce, action, b"", raw, hashlib.sha256(raw).digest(), k.address)


class SyntheticBlocks:
    """Blocks of ``synthetic_tx`` transactions (setup without signing), one second apart,
    with the validator's signed oracle prices first where given."""

    def __init__(self, sm: StateMachine, validator: PrivateKey) -> None:
        self.sm, self.validator = sm, validator
        self.now = self.nonce = T0

    def block(self, items: list[tuple[PrivateKey, Any]], signed: tuple[bytes, ...] = ()) -> Any:
        self.now += 1000
        raws, cache = list(signed), {}
        for k, action in items:
            self.nonce += 1
            raw, tx = synthetic_tx(k, self.nonce, action)
            raws.append(raw)
            cache[tx.raw] = tx
        return self.sm.apply_block(ExecBlock(self.sm.height + 1, self.now, tuple(raws)), cache)

    def oracle(self, prices: tuple[tuple[int, int], ...]) -> tuple[bytes, ...]:
        """The validator's ``OraclePrices`` (asset, micro-USDC), signed: a block's ``signed``."""
        from state.tx import OraclePrices

        self.nonce += 1
        return (sign_tx(self.validator, self.nonce, OraclePrices(prices), CHAIN),)


def risk_genesis(n_accounts: int, usdc: list[int], validator: PrivateKey, maker: PrivateKey,
                 funding_interval_ms: int = 3_600_000) -> tuple[Genesis, list[PrivateKey]]:
    keys = [PrivateKey(i.to_bytes(4, "big") * 8) for i in range(1, n_accounts + 1)]
    balances = [{"address": address_to_text(k.address), "asset": "USDC", "amount": usdc[i % len(usdc)]}
                for i, k in enumerate(keys)]
    balances += [{"address": address_to_text(maker.address), "asset": a, "amount": v}
                 for a, v in (("USDC", 10**17), ("BTC", 10**13), ("ETH", 10**14))]
    doc = make_genesis_doc(chain_id=CHAIN, validators=[{"name": "v0", "pubkey": validator.pubkey.hex(), "power": 1}],
                           bridge_pubkey=PrivateKey(b"\x01" * 32).pubkey, balances=balances, genesis_time_ms=T0)
    doc["limits"] = {"max_open_orders_per_account": 100_000}
    doc["risk"]["funding"]["interval_ms"] = funding_interval_ms
    return Genesis.from_json(doc), keys


def bench_price_move(n_accounts: int, move_pct: int = 10) -> dict[str, Any]:
    """``n_accounts`` long BTC-PERP at 1x to 5x, 3% of them at 12x, against a market maker
    that is short and quotes bids down to -15%; a quarter of the accounts also borrow USDC.
    Then: a quiet block (oracle unchanged), one block moving the oracle by -``move_pct``%,
    the block after it, a normal block accruing interest on every borrow, and a block at a
    funding boundary (the interval is 10 s here so that it comes after normal blocks)."""
    from state.tx import Borrow, CancelAll
    from state.tx import PlaceOrder as PO

    validator, maker = PrivateKey(b"\x09" * 32), PrivateKey(b"\x08" * 32)
    equity_usd = [1_000, 2_000, 5_000, 10_000, 20_000]
    genesis, keys = risk_genesis(n_accounts, [e * 10**6 for e in equity_usd], validator, maker,
                                 funding_interval_ms=10_000)
    sm = StateMachine.open(genesis, None)
    chain = SyntheticBlocks(sm, validator)
    block = chain.block

    def oracle(px: int) -> tuple[bytes, ...]:
        return chain.oracle(((1, px * 10**6), (2, 3_000 * 10**6)))

    block([], oracle(60_000))
    # the maker: asks at 60,000 for everyone to buy from, bids every 1% down to -15%
    block([(maker, PO(2, False, 60_000, 150_000_000, Tif.GTC, False, None)) for _ in range(1 + n_accounts // 10_000)]
          + [(maker, PO(2, True, 60_000 - 600 * i, 20_000_000, Tif.GTC, False, None)) for i in range(1, 16)])
    t0 = time.perf_counter()
    for start in range(0, n_accounts, 10_000):
        items: list[tuple[PrivateKey, Any]] = []
        for i in range(start, min(start + 10_000, n_accounts)):
            equity = equity_usd[i % len(equity_usd)] * 10**6
            lev = 12 if i % 100 < 3 else 1 + (i // len(equity_usd)) % 5
            items.append((keys[i], PO(2, True, 60_000, max(equity * lev // 6_000_000, 2), Tif.IOC, False, None)))
            if i % 4 == 0:  # a quarter also borrow USDC beyond their own (held idle): interest accrues
                items.append((keys[i], Borrow(0, equity + equity // 2)))
        block(items)
    setup_s = time.perf_counter() - t0
    positions = sum(1 for a in sm.ex.accounts.values() if a.positions.get(2) and a.positions[2].size)
    debtors = sum(1 for a in sm.ex.accounts.values() if a.scaled.get(0, 0) < 0)
    block([], oracle(60_000))  # every account is checked and armed after its trade
    t = time.perf_counter()
    block([], oracle(60_000))
    quiet_ms = (time.perf_counter() - t) * 1000
    moved = 60_000 * (100 - move_pct) // 100
    requote = [(maker, CancelAll(None)), (maker, PO(2, False, moved + 60, 1_000_000, Tif.GTC, False, None))]
    requote += [(maker, PO(2, True, moved - 540 * i, 20_000_000, Tif.GTC, False, None)) for i in range(1, 16)]
    t = time.perf_counter()
    res = block(requote, oracle(moved))  # the maker requotes around the new price in the same block
    move_ms = (time.perf_counter() - t) * 1000
    liquidated = {e[1] for _, e in res.events if isinstance(e, tuple) and e[0] == "liquidation" and e[2] == "start"}
    checked = sum(1 for k, _ in res.write_digests if k[:1] == b"a")
    t = time.perf_counter()
    block([], oracle(moved))
    after_ms = (time.perf_counter() - t) * 1000
    interest = []
    for _ in range(5):  # normal blocks: every borrow accrues through the pool index, O(1)
        t = time.perf_counter()
        res = block([])
        interest.append((time.perf_counter() - t) * 1000)
        funded = any(isinstance(e, tuple) and e[0] == "funding" for _, e in res.events)
        if funded:
            interest.pop()
    while True:  # the next funding boundary (every 10 s of block time here)
        t = time.perf_counter()
        res = block([])
        if any(isinstance(e, tuple) and e[0] == "funding" for _, e in res.events):
            funding_ms = (time.perf_counter() - t) * 1000
            break
    return {
        "risk_accounts": n_accounts, "risk_positions": positions, "risk_debtors": debtors, "risk_setup_s": setup_s,
        "quiet_block_ms": quiet_ms, "price_move_pct": move_pct, "price_move_block_ms": move_ms,
        "price_move_liquidated": len(liquidated), "price_move_accounts_written": checked,
        "block_after_move_ms": after_ms, "interest_block_ms": min(interest), "funding_block_ms": funding_ms,
        "app_hash": sm.app_hash.hex(),
    }


def bench_risk(n_blocks: int, block_size: int, big: int, repeats: int = 3) -> dict[str, Any]:
    """Risk on vs bare matching on the same seeded flow, interleaved ``repeats`` times (the
    best run of each counts: the machine is shared, and noise only ever slows a run)."""
    out: dict[str, Any] = {}
    for n in (1_000, big):
        full, bare = 0.0, 0.0
        for _ in range(repeats if n <= 10_000 else max(1, repeats - 1)):
            full = max(full, bench_apply(n_blocks, block_size, n)["orders_per_s"])
            with bare_matching():
                bare = max(bare, bench_apply(n_blocks, block_size, n)["orders_per_s"])
        out[f"orders_per_s_risk_{n}"] = full
        out[f"orders_per_s_bare_{n}"] = bare
        out[f"risk_cost_x_{n}"] = bare / full
    out.update(bench_price_move(big))
    return out


def print_risk(r: dict[str, Any], big: int) -> None:
    print_table("portfolio-margin risk engine", [
        ("orders/s, risk engine on, 1,000 accounts", r["orders_per_s_risk_1000"], "tx/s"),
        ("orders/s, bare matching, 1,000 accounts", r["orders_per_s_bare_1000"], "tx/s"),
        ("risk engine cost (bare / risk), 1,000 accounts", r["risk_cost_x_1000"], "x"),
        (f"orders/s, risk engine on, {big:,} accounts", r[f"orders_per_s_risk_{big}"], "tx/s"),
        (f"orders/s, bare matching, {big:,} accounts", r[f"orders_per_s_bare_{big}"], "tx/s"),
        (f"risk engine cost (bare / risk), {big:,} accounts", r[f"risk_cost_x_{big}"], "x"),
        (f"accounts long BTC-PERP (of {big:,}), 1-5x, 3% at 12x", r["risk_positions"], ""),
        ("  of which borrowing USDC", r["risk_debtors"], ""),
        ("quiet block (oracle update, nothing moves)", r["quiet_block_ms"], "ms"),
        (f"block with a -{r['price_move_pct']}% oracle move", r["price_move_block_ms"], "ms"),
        ("  accounts liquidated in it", r["price_move_liquidated"], ""),
        ("  accounts checked and re-armed (written) in it", r["price_move_accounts_written"], ""),
        ("block after the move", r["block_after_move_ms"], "ms"),
        ("empty block: interest accrues on every borrow", r["interest_block_ms"], "ms"),
        ("empty block at a funding boundary (all positions)", r["funding_block_ms"], "ms"),
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--block-size", type=int, default=2000)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--resting", type=int, default=1_000_000)
    ap.add_argument("--sig-n", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=0, help="verification threads (default: all cores)")
    ap.add_argument("--risk", action="store_true", help="run only the risk-engine section")
    ap.add_argument("--risk-accounts", type=int, default=100_000, help="accounts of the large risk runs")
    ap.add_argument("--repeats", type=int, default=3,
                    help="risk: interleaved runs of risk on / bare (best counts); compare-triggers: timed rounds")
    ap.add_argument("--sync-state", action="store_true", help="fsync the state batch of every block (not as a node does)")
    ap.add_argument("--flow", choices=("orders", "triggers"), default="orders",
                    help="the apply_block flow: the order mix, or the same with 10%% trigger orders and a ~1%% "
                         "oracle move per block")
    ap.add_argument("--compare-triggers", action="store_true",
                    help="run only the trigger-flow comparison (bench/trigger_flow.py): current flow vs trigger "
                         "flow vs price walk alone, interleaved, and libsodium's verify rate; "
                         "e.g. --resting 0 --blocks 10 --compare-triggers")
    ap.add_argument("--compare-hl", action="store_true",
                    help="run only the Hyperliquid-signed vs native comparison (bench/hl_flow.py)")
    ap.add_argument("--trigger-pct", type=int, default=10, help="compare-triggers: share of trigger orders (%%)")
    ap.add_argument("--trigger-breakdown", action="store_true",
                    help="compare-triggers: also a flow whose triggers never fire (placing vs firing)")
    args = ap.parse_args()
    import os

    if args.compare_hl:
        from bench import hl_flow

        r = hl_flow.compare(args.blocks, args.block_size, args.accounts, args.repeats)
        print_table("Hyperliquid-signed vs native transactions (same flow; apply: best per block, interleaved)",
                    hl_flow.table_rows(r))
        write_json("state_apply_hl", r)
        return
    if args.compare_triggers:
        from bench import trigger_flow

        r = trigger_flow.compare(args.blocks, args.block_size, args.accounts, args.repeats, args.trigger_pct,
                                 breakdown=args.trigger_breakdown)
        print_table("trigger orders: current flow vs trigger flow (best time per block, interleaved runs)",
                    trigger_flow.table_rows(r))
        write_json("state_apply_triggers", r)
        return
    if args.risk:
        r = bench_risk(args.blocks, args.block_size, args.risk_accounts, args.repeats)
        print_risk(r, args.risk_accounts)
        write_json("state_apply_risk", {"blocks": args.blocks, "block_size": args.block_size, **r})
        return
    threads = args.threads or os.cpu_count() or 1
    results: dict[str, Any] = {"accounts": args.accounts, "block_size": args.block_size, "blocks": args.blocks,
                               "state_batch_synced_every_block": args.sync_state}
    results["flow"] = args.flow
    results.update(bench_apply(args.blocks, args.block_size, args.accounts, sync_commits=args.sync_state,
                               flow=args.flow))
    results.update(bench_sigverify(args.sig_n, threads))
    results["sig_verify_scaling"] = results["sig_verify_per_s_all_cores"] / (threads * results["sig_verify_per_s_1core"])
    if args.resting:
        results.update(bench_resting(args.resting, args.accounts))
    print_table("bookchain state machine", [
        ("apply_block orders/s (sigs pre-verified, incl. LevelDB commit"
         + (", fsynced every block)" if args.sync_state else " as a node commits)"), results["orders_per_s"], "tx/s"),
        ("apply_block orders/s (cold: decode + verify inline)", results["orders_per_s_cold_decode_verify"], "tx/s"),
        ("block apply p50", results["block_apply_ms_p50"], "ms"),
        ("block apply max", results["block_apply_ms_max"], "ms"),
        ("fills per block", results["fills_per_block"], ""),
        ("rejected per block", results["rejected_per_block"], ""),
        (f"sig verify, 1 core ({results['sig_verify_backend']}; node/sigbatch.py)", results["sig_verify_per_s_1core"], "/s"),
        (f"sig verify, {threads} threads ({results['sig_verify_backend']})", results["sig_verify_per_s_all_cores"], "/s"),
        ("sig verify, 1 core (libsodium, one at a time)", results["sig_verify_per_s_libsodium_1core"], "/s"),
        (f"sig verify, {threads} threads (libsodium)", results["sig_verify_per_s_libsodium_all_cores"], "/s"),
        (f"sig verify scaling ({threads} threads / {threads} x 1 core)", 100 * results["sig_verify_scaling"], "%"),
        ("sig verify, 1 core (cryptography)", results["sig_verify_per_s_cryptography_1core"], "/s"),
        (f"sig verify beside a Python thread, {threads} threads, one call per signature (wall per sig)",
         results["sig_verify_beside_python_us_per_call"], "µs"),
        (f"same, a batch per call ({results['sig_verify_backend']}; node/sigbatch.py)",
         results["sig_verify_beside_python_us_batch"], "µs"),
        ("decode + verify, 1 core", results["decode_verify_per_s_1core"], "/s"),
        ("decode_tx of one order (no signature check; best of 7, CPU time)", results["decode_tx_us"], "µs"),
        ("sign, 1 core", results["sign_per_s_1core"], "/s"),
        *([("RSS with resting orders", results["rss_mb_1m_resting"], "MB"),
           ("resting orders", results["resting_orders"], "")] if args.resting else []),
    ])
    write_json("state_apply", results)


if __name__ == "__main__":
    main()
