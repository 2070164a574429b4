"""Benchmark what state sync checks before it writes a snapshot: decode it and verify that
its records give its stated app hash (node/syncverify.py). Block h+1's certificate is one
header and a few signatures, negligible next to this.

    python -m bench.snapshot_verify [--records 1000000] [--python]

The records are built with the state's own encoders, in the mix of a busy exchange: for
every four records, one account (three collateral balances and, for half of them, a perp
position), that account's nonce set (20 kept nonces) and two resting orders (half with a
client order id). Sizes: accounts ~40 bytes, nonce sets 160, orders ~35-50, keys 9-21.
Timed: encoding (what a node pays to write a snapshot), decoding with its checks (types,
strictly increasing keys) and the root: the sparse Merkle tree over every record, built
from scratch, with ``state.merkle.backend()`` reported (the C accelerator or Python).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from array import array

from bench.common import libsodium_verify_per_s, peak_rss_mb, print_table, write_json
from node.snapshots import Snapshot, decode_snapshot, encode_snapshot
from node.syncverify import Anchor, must_match_records, records_app_hash
from state import merkle, nonces, records

TARGET_S = 10.0
GENESIS_HASH = hashlib.sha256(b"bench genesis").digest()


def build_records(n: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """``n`` records (accounts, nonce sets, orders, 1:1:2), sorted by key as a snapshot holds them."""
    rng = random.Random(seed)
    encode = records.encode_record
    out: list[tuple[bytes, bytes]] = []
    oid = 0
    accounts = max(1, n // 4)
    for i in range(accounts):
        addr = hashlib.sha256(i.to_bytes(8, "big")).digest()[:20]
        balances = [[a, rng.randrange(10**6), rng.randrange(10**12, 10**15)] for a in range(3)]
        positions = [[1 + i % 2, rng.randrange(-10**6, 10**6), rng.randrange(10**12), rng.randrange(-10**9, 10**9),
                      rng.randrange(10**18), 0]] if i % 2 else []
        out.append((records.account_key(addr), encode([balances, positions, [], []])))
        base = 1_700_000_000_000 + rng.randrange(10**9)
        out.append((records.nonce_key(addr), nonces.to_bytes(array("Q", (base + j for j in range(20))))))
        for _ in range(2):
            oid += 1
            cloid = hashlib.sha256(oid.to_bytes(8, "big")).digest()[:16] if oid % 2 else None
            size = rng.randrange(1, 10**4)
            out.append((records.order_key(oid), encode([oid, oid, rng.randrange(4), addr, bool(oid % 2),
                                                        rng.randrange(50_000, 70_000), size, size, 0, False, cloid])))
    del out[n:]
    out.sort()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--python", action="store_true", help="also time the root with the Python backend")
    args = parser.parse_args()

    t = time.perf_counter()
    recs = build_records(args.records)
    build_s = time.perf_counter() - t
    app_hash = records_app_hash(recs, GENESIS_HASH)  # what the node that wrote it stated
    snap = Snapshot("bench", 100, app_hash, hashlib.sha256(b"block").digest(), 1_700_000_000_000, recs)
    del recs

    t = time.perf_counter()
    data = encode_snapshot(snap)
    encode_s = time.perf_counter() - t
    del snap

    t = time.perf_counter()
    decoded = decode_snapshot(data)
    decode_s = time.perf_counter() - t
    t = time.perf_counter()
    must_match_records(decoded.records, Anchor(decoded.height, decoded.app_hash, decoded.block_hash), GENESIS_HASH)
    root_s = time.perf_counter() - t
    verify_s = decode_s + root_s
    python_root_s = None
    if args.python:
        t = time.perf_counter()
        assert merkle.StateTree.of_records(decoded.records, native=False).root is not None
        python_root_s = round(time.perf_counter() - t, 2)

    result = {
        "records": len(decoded.records),
        "snapshot_mb": round(len(data) / 2**20, 1),
        "merkle_backend": merkle.backend(),
        "build_s": round(build_s, 2),
        "encode_s": round(encode_s, 2),
        "decode_s": round(decode_s, 2),
        "root_s": round(root_s, 2),
        "decode_and_verify_s": round(verify_s, 2),
        "records_per_s": round(len(decoded.records) / verify_s),
        "target_s": TARGET_S,
        "within_target": verify_s < TARGET_S,
        "python_root_s": python_root_s,
        "peak_rss_mb": round(peak_rss_mb()),
        "sig_verify_per_s_libsodium_1core": libsodium_verify_per_s(),
    }
    rows = [
        ("snapshot size", result["snapshot_mb"], "MB"),
        ("encode (node writes it)", encode_s, "s"),
        ("decode + checks", decode_s, "s"),
        ("root (state tree from scratch)", root_s, "s"),
        ("decode + verify", verify_s, f"s (target < {TARGET_S:.0f} s)"),
        ("records verified per second", result["records_per_s"], "/s"),
        ("peak RSS", result["peak_rss_mb"], "MB"),
        ("sig verify, 1 core (libsodium; the machine's yardstick)", result["sig_verify_per_s_libsodium_1core"], "/s"),
    ]
    if python_root_s is not None:
        rows.append(("root, Python backend", python_root_s, "s"))
    print_table(f"snapshot verification, {len(decoded.records):,} records ({merkle.backend()} tree)", rows)
    write_json("snapshot_verify", result)


if __name__ == "__main__":
    main()
