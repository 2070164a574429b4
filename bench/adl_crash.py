"""Auto-deleveraging at scale: many bankrupt accounts in one block, an empty insurance fund.

    python -m bench.adl_crash [--sizes 100,400,1000,2000]

For each size N: N accounts long 3 lots of BTC-PERP at about 14x against N accounts short
3 lots each (their counterparties, who rested the asks), no other liquidity and no
insurance fund; then one block moves the oracle by -10%. Every long is bankrupt, the book
cannot take its position, and ADL closes it against the shorts. The block's time is the
cost of the liquidation scan's ADL ranking (state/liquidation.py ``AdlQueues``): it grows
with N, where ranking every opposite holder afresh for every bankrupt account grew with N^2.
Prints a table beside libsodium's one-core verify rate and writes bench/results/adl_crash.json.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import libsodium_verify_per_s, print_table, write_json
from bench.state_apply import CHAIN, T0, SyntheticBlocks
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey, address_to_text
from state.machine import StateMachine
from state.tx import PlaceOrder, Tif

BTC_PERP = 2
LOTS = 3  # 0.0003 BTC, $18 at $60,000


def crash(n: int) -> dict[str, Any]:
    """The block time (ms) of a -10% move that bankrupts ``n`` longs against ``n`` shorts."""
    validator = PrivateKey(b"\x09" * 32)
    longs = [PrivateKey(b"L" + i.to_bytes(4, "big") * 7 + b"\x00" * 3) for i in range(n)]
    shorts = [PrivateKey(b"S" + i.to_bytes(4, "big") * 7 + b"\x00" * 3) for i in range(n)]
    balances = [{"address": address_to_text(k.address), "asset": "USDC", "amount": 1_300_000} for k in longs]
    balances += [{"address": address_to_text(k.address), "asset": "USDC", "amount": 100_000_000} for k in shorts]
    doc = make_genesis_doc(chain_id=CHAIN, validators=[{"name": "v0", "pubkey": validator.pubkey.hex(), "power": 1}],
                           bridge_pubkey=PrivateKey(b"\x01" * 32).pubkey, balances=balances, genesis_time_ms=T0)
    chain = SyntheticBlocks(StateMachine.open(Genesis.from_json(doc), None), validator)
    block = chain.block

    def oracle(px: int) -> tuple[bytes, ...]:
        return chain.oracle(((1, px * 10**6),))

    block([], oracle(60_000))
    block([(k, PlaceOrder(BTC_PERP, False, 60_000, LOTS, Tif.GTC, False, None)) for k in shorts])
    block([(k, PlaceOrder(BTC_PERP, True, 60_000, LOTS, Tif.IOC, False, None)) for k in longs])
    block([], oracle(60_000))  # every account checked and armed
    t = time.perf_counter()
    cpu = time.process_time()
    res = block([], oracle(54_000))
    ms, cpu_ms = (time.perf_counter() - t) * 1000, (time.process_time() - cpu) * 1000
    names = [type(e).__name__ for _, e in res.events]
    return {"accounts_per_side": n, "block_ms": ms, "block_cpu_ms": cpu_ms,
            "liquidated": names.count("LiquidationStarted"), "adl_trades": names.count("Deleveraged")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100,400,1000,2000", help="accounts per side, comma-separated")
    args = p.parse_args()
    runs = [crash(int(n)) for n in args.sizes.split(",")]
    sodium = libsodium_verify_per_s()
    rows: list[tuple[str, Any, str]] = []
    for r in runs:
        n = r["accounts_per_side"]
        rows += [(f"N={n}: the -10% block", r["block_ms"], "ms"),
                 (f"N={n}: liquidated / ADL trades", f"{r['liquidated']:,} / {r['adl_trades']:,}", ""),
                 (f"N={n}: per bankrupt account", r["block_ms"] * 1000 / max(1, r["liquidated"]), "us")]
    rows.append(("libsodium ed25519 verify, one core", sodium, "/s"))
    print_table("ADL of N bankrupt longs against N shorts, empty insurance fund", rows)
    write_json("adl_crash", {"runs": runs, "libsodium_verify_per_s": sodium})


if __name__ == "__main__":
    main()
