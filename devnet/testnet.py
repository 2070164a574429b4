"""``bookchain testnet``: homes for validators on given hosts, as CometBFT's ``testnet``.

One genesis, one home per host (``OUT/node0`` ... ``OUT/nodeN-1``, each with its validator
key, p2p identity, the shared genesis and a config.json whose peers are the other hosts'
multiaddrs with their peer ids), funded CLI keys in ``OUT/cli``, and the devnet manifest
``OUT/devnet.json`` naming each node's host, so ``bookchain devnet status|load --home OUT``
reach the validators wherever they run. It writes files only: each home is copied to its
host and started there with ``bookchain node start --home nodeI``.

Ports are fixed, not probed (the hosts are other machines): ``--p2p-port``/``--rpc-port``,
26656/26657 by default as in CometBFT. A host named more than once (several validators on
one machine, or a test on 127.0.0.1) gets both ports moved up by ``PORT_STEP`` for each
earlier node on it, so its nodes never collide.

Built on devnet/genesis.py's ``create_devnet`` with one ``Placement`` per host: the same
keys, genesis and config code a local devnet uses, minus the test switches (a network
of several machines is not a place for fault injection).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from devnet.genesis import DEFAULT_FUTURE_EXPIRY_S, DevnetSpec, Placement, create_devnet
from devnet.manifest import Manifest, ip_version

CHAIN_ID = "bookchain-testnet"
DEFAULT_P2P_PORT = 26656
DEFAULT_RPC_PORT = 26657
DEFAULT_TRADERS = 4
PORT_STEP = 2  # node k on a host already holding k nodes: 26658/26659, 26660/26661, ...
MAX_PORT = 65535


class TestnetError(ValueError):
    """The hosts or ports cannot make a testnet; the message says which and why."""

    __test__ = False  # not a pytest class, whatever its name


@dataclass(frozen=True, slots=True)
class TestnetSpec:
    __test__ = False  # not a pytest class, whatever its name

    hosts: tuple[str, ...]
    p2p_port: int = DEFAULT_P2P_PORT
    rpc_port: int = DEFAULT_RPC_PORT
    bind_all: bool = False  # listen on 0.0.0.0 / :: instead of the host's own address
    chain_id: str = CHAIN_ID
    traders: int = DEFAULT_TRADERS
    eth_accounts: int = 0  # the well-known devnet test keys: off on a network others can reach
    future_expiry_s: int = DEFAULT_FUTURE_EXPIRY_S


#: a DNS name the nodes' peer multiaddrs (``/dns4/NAME/...``) can carry: LDH labels of 1-63
_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def parse_hosts(text: str) -> tuple[str, ...]:
    """``A,B,C`` -> the hosts, stripped; empty entries and anything but an IP address or a
    DNS name (letters, digits, '-' and dots: what a peer multiaddr carries) are refused."""
    hosts = tuple(h.strip() for h in text.split(","))
    for h in hosts:
        if not h:
            raise TestnetError(f"--hosts {text!r} has an empty entry")
        if ip_version(h) is None and not (h.isascii() and _HOST_NAME.fullmatch(h)):
            raise TestnetError(f"--hosts entry {h!r} is not an IP address or host name (no port, no brackets)")
    return hosts


def bind_address(host: str, bind_all: bool) -> str:
    """What a node on ``host`` listens on: the host's own IP, or the wildcard when asked or
    when the host is a DNS name (a listener binds an address, not a name)."""
    version = ip_version(host)
    if bind_all or version is None:
        return "::" if version == 6 else "0.0.0.0"
    return host


def placements(spec: TestnetSpec) -> list[Placement]:
    """One placement per host, in order; a repeated host moves its later nodes' ports up."""
    seen: Counter[str] = Counter()
    out: list[Placement] = []
    for host in spec.hosts:
        shift = PORT_STEP * seen[host]
        seen[host] += 1
        p2p, rpc = spec.p2p_port + shift, spec.rpc_port + shift
        if max(p2p, rpc) > MAX_PORT:
            raise TestnetError(f"host {host} holds {seen[host]} nodes: port {max(p2p, rpc)} is above {MAX_PORT}")
        out.append(Placement(host, rpc, p2p, bind_address(host, spec.bind_all)))
    if len({(p.host, port) for p in out for port in (p.rpc_port, p.p2p_port)}) != 2 * len(out):
        raise TestnetError(f"--p2p-port {spec.p2p_port} and --rpc-port {spec.rpc_port} make two nodes on "
                           "one host share a port; give ports at least "
                           f"{PORT_STEP * max(seen.values())} apart")
    return out


def create_testnet(out: str | os.PathLike[str], spec: TestnetSpec, *, now_ms: int | None = None) -> Manifest:
    """Write the testnet into ``out`` (which must be empty or absent) and return its manifest."""
    if not spec.hosts:
        raise TestnetError("no hosts")
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; give a new directory to --out")
    places = placements(spec)
    devnet_spec = DevnetSpec(nodes=len(spec.hosts), traders=spec.traders, chain_id=spec.chain_id,
                             future_expiry_s=spec.future_expiry_s, eth_accounts=spec.eth_accounts)
    return create_devnet(root, devnet_spec, now_ms=now_ms, placements=places, test_switches=False)
