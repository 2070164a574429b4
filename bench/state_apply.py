"""Benchmark the state machine: apply_block throughput, signature verification, memory.

    python -m bench.state_apply [--blocks 20] [--block-size 2000] [--resting 1000000]

Flow: 1,000 funded accounts on 4 markets (BTC/ETH spot and perps); about 60% limit orders
within a few ticks of the mid, 25% cancels (by client order id, of orders that may or may
not still rest), 15% IOC orders that cross. Transactions are really signed, then decoded
and verified into the cache exactly as the mempool does, so ``orders_per_s`` measures
``apply_block`` including the LevelDB commit with signatures pre-verified.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import current_rss_mb, peak_rss_mb, print_table, write_json
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey, address_to_text
from state.machine import ExecBlock, StateMachine, decode_verified
from state.tx import Cancel, PlaceOrder, SignedTx, Tif, sign_tx

CHAIN = "bookchain-bench"
T0 = 1_700_000_000_000
MIDS = {0: 60_000, 1: 30_000, 2: 60_000, 3: 30_000}


def make_chain(n_accounts: int, path: str | None) -> tuple[Genesis, list[PrivateKey], StateMachine]:
    keys = [PrivateKey(i.to_bytes(4, "big") * 8) for i in range(1, n_accounts + 1)]
    balances = []
    for k in keys:
        for asset, amount in (("USDC", 10**14), ("BTC", 10**12), ("ETH", 10**13)):
            balances.append({"address": address_to_text(k.address), "asset": asset, "amount": amount})
    doc = make_genesis_doc(chain_id=CHAIN, validators=[], bridge_pubkey=PrivateKey(b"\x01" * 32).pubkey,
                           balances=balances, genesis_time_ms=T0)
    doc["limits"] = {"max_open_orders_per_account": 100_000}
    genesis = Genesis.from_json(doc)
    return genesis, keys, StateMachine.open(genesis, path)


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
        out[tx.hash] = tx
    return out


def bench_apply(n_blocks: int, block_size: int, n_accounts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        _genesis, keys, sm = make_chain(n_accounts, d)
        gen = FlowGenerator(keys)
        t = time.perf_counter()
        blocks = [[gen.signed(CHAIN) for _ in range(block_size)] for _ in range(n_blocks + 2)]
        sign_s = time.perf_counter() - t
        all_raws = [r for b in blocks for r in b]
        t = time.perf_counter()
        cache = verify_many(all_raws, CHAIN)
        verify_s = time.perf_counter() - t
        # two warm-up blocks build resting liquidity, then the timed blocks
        now = T0 + 1000
        for i in range(2):
            sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(blocks[i])), cache)
        per_block = []
        fills = rejected = 0
        for i in range(2, n_blocks + 2):
            t = time.perf_counter()
            res = sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(blocks[i])), cache)
            per_block.append(time.perf_counter() - t)
            fills += sum(len(a.fills) for r in res.receipts for a in r.results)
            rejected += sum(1 for r in res.receipts if r.code != 0)
        t = time.perf_counter()
        cold_block = [gen.signed(CHAIN) for _ in range(block_size)]
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


def bench_sigverify(n: int, threads: int) -> dict[str, float]:
    from state.tx import decode_tx

    keys = [PrivateKey(i.to_bytes(4, "big") * 8) for i in range(1, 101)]
    gen = FlowGenerator(keys, seed=3)
    txs = [decode_tx(gen.signed(CHAIN)) for _ in range(n)]

    def check(chunk: list[SignedTx]) -> int:
        return sum(1 for tx in chunk if tx.verify_signature(CHAIN))

    t = time.perf_counter()
    assert check(txs) == n
    one = n / (time.perf_counter() - t)
    chunks = [txs[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        t = time.perf_counter()
        assert sum(pool.map(check, chunks)) == n
        many = n / (time.perf_counter() - t)
    crypto = bench_cryptography_verify(txs[:2000])
    return {"sig_verify_per_s_1core": one, "sig_verify_per_s_all_cores": many,
            "sig_verify_cores": threads, "sig_verify_per_s_cryptography_1core": crypto}


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
            cache[tx.hash] = tx
            placed += 1
        sm.apply_block(ExecBlock(sm.height + 1, height_time, tuple(raws)), cache)
        height_time += 1
    resting = sum(len(b.orders) for b in sm.ex.books.values())
    return {"rss_mb_1m_resting": current_rss_mb(), "rss_mb_before_orders": base_rss,
            "rss_peak_mb": peak_rss_mb(), "resting_orders": resting}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--block-size", type=int, default=2000)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--resting", type=int, default=1_000_000)
    ap.add_argument("--sig-n", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=0, help="verification threads (default: all cores)")
    args = ap.parse_args()
    import os

    threads = args.threads or os.cpu_count() or 1
    results: dict[str, Any] = {"accounts": args.accounts, "block_size": args.block_size, "blocks": args.blocks}
    results.update(bench_apply(args.blocks, args.block_size, args.accounts))
    results.update(bench_sigverify(args.sig_n, threads))
    if args.resting:
        results.update(bench_resting(args.resting, args.accounts))
    print_table("bookchain state machine", [
        ("apply_block orders/s (sigs pre-verified, incl. LevelDB commit)", results["orders_per_s"], "tx/s"),
        ("apply_block orders/s (cold: decode + verify inline)", results["orders_per_s_cold_decode_verify"], "tx/s"),
        ("block apply p50", results["block_apply_ms_p50"], "ms"),
        ("block apply max", results["block_apply_ms_max"], "ms"),
        ("fills per block", results["fills_per_block"], ""),
        ("rejected per block", results["rejected_per_block"], ""),
        ("sig verify, 1 core (libsodium)", results["sig_verify_per_s_1core"], "/s"),
        (f"sig verify, {threads} threads (libsodium)", results["sig_verify_per_s_all_cores"], "/s"),
        ("sig verify, 1 core (cryptography)", results["sig_verify_per_s_cryptography_1core"], "/s"),
        ("decode + verify, 1 core", results["decode_verify_per_s_1core"], "/s"),
        ("sign, 1 core", results["sign_per_s_1core"], "/s"),
        *([("RSS with resting orders", results["rss_mb_1m_resting"], "MB"),
           ("resting orders", results["resting_orders"], "")] if args.resting else []),
    ])
    write_json("state_apply", results)


if __name__ == "__main__":
    main()
