"""What a Hyperliquid-signed transaction costs against a native (ed25519) one.

    python -m bench.state_apply --resting 0 --blocks 10 --compare-hl

One order flow (bench/state_apply.py's FlowGenerator: limit orders near the mid, cancels by
cloid, crossing IOCs) is signed twice: by ed25519 keys as native transactions, and by
secp256k1 keys as the Hyperliquid SDK signs (state/hltx.py), the same actions as order /
cancelByCloid maps. Both flows run on one genesis that funds both sets of accounts. Measured:

- decode + signature check on one core: native = decode + libsodium verify; Hyperliquid =
  decode + msgpack canonical check + keccak + EIP-712 + libsecp256k1 recovery;
- ``apply_block`` with signatures pre-verified (the node's cache), interleaved fresh-chain
  runs A B A B ..., best time per block: the cost of mapping actions at execution
  (state/hlexec.py);
- libsodium's one-core verify rate in the same run, the machine's yardstick.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from bench.state_apply import CHAIN, T0, FlowGenerator
from devnet.genesis import DEVNET_PRICES
from node.gctune import tune_for_throughput
from state import hltx
from state.eip712 import EthKey
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey, address_to_text
from state.machine import ExecBlock, StateMachine, decode_verified
from state.tx import Cancel, PlaceOrder, SignedTx, Tif, decode_tx, sign_tx

WARMUP_BLOCKS = 2
#: bookchain markets 0..3 (BTC/USDC, ETH/USDC, BTC-PERP, ETH-PERP) as Hyperliquid asset ids
ASSET_OF_MARKET = {0: 10_000, 1: 10_001, 2: 0, 3: 1}
_TIF_NAME = {Tif.GTC: "Gtc", Tif.IOC: "Ioc", Tif.ALO: "Alo"}


def _decimal(units: int, decimals: int) -> str:
    whole, frac = divmod(units, 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
    return text


def hl_map(genesis: Genesis, action: Any) -> dict[str, Any]:
    """The Hyperliquid action map of a FlowGenerator action."""
    spec = genesis.markets[action.market]
    asset = ASSET_OF_MARKET[action.market]
    if isinstance(action, Cancel):
        assert action.cloid is not None
        return {"type": "cancelByCloid", "cancels": [{"asset": asset, "cloid": "0x" + action.cloid.hex()}]}
    assert isinstance(action, PlaceOrder)
    wire: dict[str, Any] = {
        "a": asset, "b": action.is_buy,
        "p": _decimal(action.price * spec.tick_size, genesis.assets[spec.quote].decimals),
        "s": _decimal(action.size * spec.lot_size, genesis.assets[spec.base].decimals),
        "r": action.reduce_only, "t": {"limit": {"tif": _TIF_NAME[action.tif]}},
    }
    if action.cloid is not None:
        wire["c"] = "0x" + action.cloid.hex()
    return {"type": "order", "orders": [wire], "grouping": "na"}


def make_genesis(n_accounts: int) -> tuple[Genesis, list[PrivateKey], list[EthKey]]:
    keys = [PrivateKey(i.to_bytes(4, "big") * 8) for i in range(1, n_accounts + 1)]
    eth = [EthKey(i.to_bytes(4, "big") * 8) for i in range(1, n_accounts + 1)]
    balances = []
    for address in [k.address for k in keys] + [e.address for e in eth]:
        for asset, amount in (("USDC", 10**14), ("BTC", 10**12), ("ETH", 10**13)):
            balances.append({"address": address_to_text(address), "asset": asset, "amount": amount})
    doc = make_genesis_doc(chain_id=CHAIN, validators=[], bridge_pubkey=PrivateKey(b"\x01" * 32).pubkey,
                           balances=balances, genesis_time_ms=T0, initial_oracle_prices=DEVNET_PRICES)
    doc["limits"] = {"max_open_orders_per_account": 100_000}
    return Genesis.from_json(doc), keys, eth


def make_flows(genesis: Genesis, keys: list[PrivateKey], eth: list[EthKey], n_blocks: int,
               block_size: int) -> tuple[list[list[bytes]], list[list[bytes]]]:
    """The same actions signed natively and as Hyperliquid transactions."""
    gen = FlowGenerator(keys)
    index = {k.pubkey: i for i, k in enumerate(keys)}
    nonce = {i: T0 for i in range(len(keys))}
    native: list[list[bytes]] = []
    hl: list[list[bytes]] = []
    for _ in range(n_blocks + WARMUP_BLOCKS):
        a_block, b_block = [], []
        for _ in range(block_size):
            key, action = gen.action()
            i = index[key.pubkey]
            nonce[i] += 1
            a_block.append(sign_tx(key, nonce[i], action, CHAIN))
            b_block.append(hltx.sign_l1(eth[i], hl_map(genesis, action), nonce[i]))
        native.append(a_block)
        hl.append(b_block)
    return native, hl


def decode_rate(raws: list[Any], verify: Any, repeats: int = 3) -> float:
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for raw in raws:
            verify(raw)
        best = max(best, len(raws) / (time.perf_counter() - t))
    return best


def run(genesis: Genesis, blocks: list[list[bytes]], cache: dict[bytes, SignedTx]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        sm = StateMachine.open(genesis, d, sync_commits=False)
        now = T0 + 1000
        for i in range(WARMUP_BLOCKS):
            sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(blocks[i])), cache)
        tune_for_throughput()
        wall = []
        rejected = fills = 0
        for i in range(WARMUP_BLOCKS, len(blocks)):
            t = time.perf_counter()
            res = sm.apply_block(ExecBlock(sm.height + 1, now + i, tuple(blocks[i])), cache)
            wall.append(time.perf_counter() - t)
            rejected += sum(1 for r in res.receipts if r.code != 0)
            fills += sum(len(a.fills) for r in res.receipts for a in r.results)
        resting = sum(len(b.orders) for b in sm.ex.books.values())
        sm.close()
    return {"wall": wall, "rejected": rejected, "fills": fills, "resting": resting}


def compare(n_blocks: int, block_size: int, n_accounts: int, repeats: int = 3, sig_n: int = 5_000) -> dict[str, Any]:
    genesis, keys, eth = make_genesis(n_accounts)
    native, hl = make_flows(genesis, keys, eth, n_blocks, block_size)
    sample_a = [r for b in native for r in b][:sig_n]
    sample_b = [r for b in hl for r in b][:sig_n]
    native_tx = [decode_tx(r) for r in sample_a]
    out: dict[str, Any] = {
        "blocks": n_blocks, "block_size": block_size, "accounts": n_accounts, "repeats": repeats,
        "sig_verify_per_s_libsodium_1core": decode_rate(native_tx, lambda tx: tx.verify_signature(CHAIN)),
        "native_decode_verify_per_s_1core": decode_rate(sample_a, lambda raw: decode_verified(raw, CHAIN)),
        "hl_decode_recover_per_s_1core": decode_rate(sample_b, lambda raw: decode_verified(raw, CHAIN)),
    }
    caches = [{raw: decode_tx(raw) for b in flow for raw in b} for flow in (native, hl)]
    runs: list[list[dict[str, Any]]] = [[], []]
    for rep in range(repeats + 1):
        for i, flow in enumerate((native, hl)):
            r = run(genesis, flow, caches[i])
            if rep:
                runs[i].append(r)
    txs = n_blocks * block_size
    for name, rs in zip(("native", "hl"), runs, strict=True):
        best = [min(r["wall"][i] for r in rs) for i in range(n_blocks)]
        out[f"{name}_apply_tx_per_s"] = txs / sum(best)
        out[f"{name}_block_ms_p50"] = sorted(best)[n_blocks // 2] * 1000
        out[f"{name}_rejected_per_block"] = rs[0]["rejected"] / n_blocks
        out[f"{name}_fills_per_block"] = rs[0]["fills"] / n_blocks
        out[f"{name}_resting_after"] = rs[0]["resting"]
    out["apply_cost_pct"] = 100 * (1 - out["hl_apply_tx_per_s"] / out["native_apply_tx_per_s"])
    out["decode_verify_cost_ratio"] = out["native_decode_verify_per_s_1core"] / out["hl_decode_recover_per_s_1core"]
    return out


def table_rows(r: dict[str, Any]) -> list[tuple[str, Any, str]]:
    return [
        ("sig verify, 1 core (libsodium, one at a time)", r["sig_verify_per_s_libsodium_1core"], "/s"),
        ("native: decode + ed25519 verify, 1 core", r["native_decode_verify_per_s_1core"], "/s"),
        ("Hyperliquid: decode + EIP-712 + secp256k1 recover, 1 core", r["hl_decode_recover_per_s_1core"], "/s"),
        ("decode + check cost, Hyperliquid / native", r["decode_verify_cost_ratio"], "x"),
        ("native: apply_block (pre-verified)", r["native_apply_tx_per_s"], "tx/s"),
        ("Hyperliquid: apply_block (pre-verified)", r["hl_apply_tx_per_s"], "tx/s"),
        ("apply cost of mapping Hyperliquid actions", r["apply_cost_pct"], "%"),
        ("native: rejected per block", r["native_rejected_per_block"], ""),
        ("Hyperliquid: rejected per block", r["hl_rejected_per_block"], ""),
        ("native: fills per block", r["native_fills_per_block"], ""),
        ("Hyperliquid: fills per block", r["hl_fills_per_block"], ""),
    ]
