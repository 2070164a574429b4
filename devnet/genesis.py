"""Create a devnet on disk: keys, genesis, per-node homes and configs, CLI keys.

Layout (node homes follow node/API.md)::

    DEVNET/devnet.json        manifest: nodes, ports, peer ids, later the pids
    DEVNET/genesis.json       the shared genesis document
    DEVNET/cli/genesis.json   the same document: what the CLI's light client trusts (--verify)
    DEVNET/cli/keys/*.json    CLI keys: bridge, alice, bob, trader0..traderK-1, and the
                              secp256k1 test accounts eth0..ethM-1 (devnet/ethaccounts.py)
    DEVNET/node0/config.json  rpc + p2p ports, every other node as a peer
    DEVNET/node0/genesis.json
    DEVNET/node0/keys/validator.json, keys/p2p.key

Where each node runs is a ``Placement``: the host its peers and clients reach it at, its
two ports, and the address it binds. A local devnet places every node on 127.0.0.1 with
ports found by binding port 0, all 2N sockets held open together so the kernel hands out
distinct ports; they are released just before the nodes start, which is the usual (small)
race every "find a free port" tool accepts. ``bookchain testnet`` (devnet/testnet.py)
passes its own placements, one per given host, and the same code writes the homes.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnet import ethaccounts, p2pkeys
from devnet.manifest import LOCALHOST, Manifest, NodeEntry, host_multiaddr, save_manifest
from node.wallet.keystore import KeyStore, write_private_json
from state.genesis import default_assets, future_market, make_genesis_doc
from state.keys import PrivateKey, address_to_text

CHAIN_ID = "bookchain-devnet"
DEFAULT_NODES = 4
# Enough traders that one rarely has over 100 txs in a block at 5,000 tx/s: cancels run
# before the block's other txs, so more than 100 of a signer's cancels ahead of its orders
# push those orders' lower nonces out of the 100 kept (NONCE_TOO_LOW); with 16 traders a
# 60 s run at 5,000/s lost ~23k orders that way.
DEFAULT_TRADERS = 64
# human units; every demo and trader account gets the same bag
DEFAULT_FUNDS: dict[str, int] = {"USDC": 10_000_000, "BTC": 1_000, "ETH": 10_000}
DEMO_ACCOUNTS = ("alice", "bob")
# human units of the collateral (USDC) the insurance fund starts with: the last resort
# between a liquidation that gaps through its bankruptcy price and the lenders
DEFAULT_INSURANCE_FUND = 1_000_000


#: The devnet's dated future (market 4, after the four default markets): BTC-FUT expires this
#: many seconds after the devnet's genesis time, its settlement price averaging the oracle
#: over the last minute (state/futures.py).
DEFAULT_FUTURE_EXPIRY_S = 600
FUTURE_SYMBOL = "BTC-FUT"
FUTURE_WINDOW_MS = 60_000


@dataclass(frozen=True, slots=True)
class DevnetSpec:
    nodes: int = DEFAULT_NODES
    traders: int = DEFAULT_TRADERS
    chain_id: str = CHAIN_ID
    funds: tuple[tuple[str, int], ...] = tuple(DEFAULT_FUNDS.items())
    consensus: tuple[tuple[str, Any], ...] = ()  # overrides of config.json "consensus"
    future_expiry_s: int = DEFAULT_FUTURE_EXPIRY_S  # BTC-FUT expires this long after genesis (0: none)
    eth_accounts: int = ethaccounts.DEFAULT_ETH_ACCOUNTS  # funded deterministic secp256k1 test accounts


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one validator runs. ``host`` goes into the other nodes' peer lists and the
    manifest's RPC URL; ``bind`` is what its RPC and p2p listeners bind (the host itself,
    or 0.0.0.0 on a machine whose public address is not on an interface, as behind NAT)."""

    host: str
    rpc_port: int
    p2p_port: int
    bind: str


def local_placements(count: int) -> list[Placement]:
    """``count`` nodes on 127.0.0.1, each with two ports that were free a moment ago."""
    ports = free_ports(2 * count)
    return [Placement(LOCALHOST, ports[2 * i], ports[2 * i + 1], LOCALHOST) for i in range(count)]


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((host, 0))
            ports.append(s.getsockname()[1])
        return ports


#: The devnet validators' static price feed (collateral units per whole unit: USDC has 6 decimals).
DEVNET_PRICES = {"BTC": 60_000_000_000, "ETH": 3_000_000_000}


def node_config(name: str, rpc_port: int, p2p_port: int, peers: list[str],
                consensus: dict[str, Any] | None = None, *, bind: str = LOCALHOST,
                test_switches: bool = True) -> dict[str, Any]:
    """config.json of one node (node/API.md); unspecified sections take the node's defaults.
    ``bind`` is the IP address its RPC and p2p listeners bind; ``test_switches`` lets the
    devnet's tools move the node's oracle feed (a testnet for several machines says False:
    test switches never belong on a shared network)."""
    doc: dict[str, Any] = {
        "moniker": name,
        "rpc": {"host": bind, "port": rpc_port},
        "p2p": {"listen": host_multiaddr(bind, p2p_port), "peers": peers},
    }
    if consensus:
        doc["consensus"] = dict(consensus)
    doc["oracle"] = {"prices": dict(DEVNET_PRICES), "interval_ms": 2000}
    if test_switches:
        doc["test"] = {"allow_oracle_override": True}
    return doc


def funded_balances(addresses: list[bytes], funds: dict[str, int], decimals: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"address": address_to_text(a), "asset": sym, "amount": str(amount * 10 ** decimals[sym])}
        for a in addresses for sym, amount in funds.items()
    ]


def devnet_genesis_doc(*, chain_id: str, validators: list[dict[str, Any]], bridge_pubkey: bytes,
                       funded: list[bytes], funds: dict[str, int], genesis_time_ms: int,
                       insurance_fund: int = DEFAULT_INSURANCE_FUND, future_expiry_s: int = 0) -> dict[str, Any]:
    """The devnet's genesis document: default assets and markets, every ``funded`` address
    holding ``funds`` (human units), the insurance fund seeded with ``insurance_fund``
    (human units of the collateral), starting at the validators' feed prices (the index
    before the first oracle submission lands; state/prices.py). Benchmarks of the devnet's flow build theirs here too,
    so they measure the chain the devnet runs. ``future_expiry_s`` > 0 appends BTC-FUT (market
    4) expiring that many seconds after ``genesis_time_ms``; the default markets 0..3 stay."""
    assets = default_assets()
    decimals = {a["symbol"]: int(a["decimals"]) for a in assets}
    doc = make_genesis_doc(chain_id=chain_id, validators=validators, bridge_pubkey=bridge_pubkey,
                           balances=funded_balances(funded, funds, decimals), genesis_time_ms=genesis_time_ms,
                           insurance_fund=insurance_fund * 10 ** decimals[assets[0]["symbol"]],
                           initial_oracle_prices=DEVNET_PRICES)
    if future_expiry_s > 0:
        doc["markets"].append(future_market(FUTURE_SYMBOL, "BTC", genesis_time_ms + future_expiry_s * 1000,
                                            FUTURE_WINDOW_MS))
    return doc


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def create_devnet(home: str | os.PathLike[str], spec: DevnetSpec | None = None,
                  *, peer_id_of: Callable[[Path], str] = p2pkeys.ensure_peer_id,
                  now_ms: int | None = None, placements: list[Placement] | None = None,
                  test_switches: bool = True) -> Manifest:
    """Write a fresh devnet into ``home`` (which must not hold one) and return its manifest.
    ``placements`` (one per node) put the nodes on given hosts and ports; by default every
    node is on 127.0.0.1 with free ports."""
    spec = spec or DevnetSpec()
    if placements is not None and len(placements) != spec.nodes:
        raise ValueError(f"{len(placements)} placements for {spec.nodes} nodes")
    root = Path(home).absolute()
    if (root / "devnet.json").exists():
        raise FileExistsError(f"{root} already holds a devnet (devnet.json); use --reset to replace it")
    root.mkdir(parents=True, exist_ok=True)
    cli = KeyStore(root / "cli")

    # validators: keys, p2p identities, hosts and ports
    places = placements if placements is not None else local_placements(spec.nodes)
    validator_keys = [PrivateKey.generate() for _ in range(spec.nodes)]
    entries: list[NodeEntry] = []
    for i, vk in enumerate(validator_keys):
        node_home = root / f"node{i}"
        (node_home / "logs").mkdir(parents=True, exist_ok=True)
        write_private_json(node_home / "keys" / "validator.json",
                           {"seed": vk.hex(), "pubkey": vk.pubkey.hex()}, overwrite=True)
        place = places[i]
        entries.append(NodeEntry(f"node{i}", str(node_home), place.rpc_port, place.p2p_port,
                                 peer_id_of(node_home), vk.pubkey.hex(), place.host))

    # CLI keys: the bridge authority and funded accounts
    bridge = cli.create("bridge")
    accounts = [*DEMO_ACCOUNTS, *(f"trader{i}" for i in range(spec.traders))]
    funded = [cli.create(name).address for name in accounts]
    # Ethereum test accounts (the same keys on every devnet), with the same bag as alice's
    eth_accounts = [ethaccounts.account_name(i) for i in range(spec.eth_accounts)]
    funded += [cli.add_eth(name, ethaccounts.account_key(i)).address for i, name in enumerate(eth_accounts)]

    doc = devnet_genesis_doc(
        chain_id=spec.chain_id,
        validators=[{"name": e.name, "pubkey": e.validator_pubkey, "power": 1} for e in entries],
        bridge_pubkey=bridge.key.pubkey,
        funded=funded,
        funds=dict(spec.funds),
        genesis_time_ms=now_ms if now_ms is not None else time.time_ns() // 1_000_000,
        future_expiry_s=spec.future_expiry_s,
    )
    _write_json(root / "genesis.json", doc)
    _write_json(Path(cli.home) / "genesis.json", doc)  # what ``query ... --verify`` trusts (cli/verify.py)

    consensus = dict(spec.consensus)
    for e, place in zip(entries, places, strict=True):
        peers = [o.p2p_addr for o in entries if o.name != e.name]
        node_home = Path(e.home)
        _write_json(node_home / "genesis.json", doc)
        _write_json(node_home / "config.json", node_config(e.name, e.rpc_port, e.p2p_port, peers, consensus,
                                                           bind=place.bind, test_switches=test_switches))

    manifest = Manifest(spec.chain_id, int(doc["genesis_time_ms"]), entries, str(cli.home), accounts,
                        eth_accounts=eth_accounts)
    save_manifest(root, manifest)
    return manifest
