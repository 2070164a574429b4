"""A node's home directory and configuration (see node/API.md for the layout)."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consensus.config import ConsensusConfig
from state.keys import PrivateKey

MAX_GOSSIP_GAP_MS = 1000
MAX_SUBMIT_KIB = 1 << 20  # 1 GiB
MAX_WS_SUBSCRIPTIONS = 100_000  # what 1,000 connections x 100 each could hold before the cap


class ConfigError(ValueError):
    """config.json is malformed: the node refuses to start with this one-line reason."""


def _ints(section: str, obj: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if type(value) is not int:
            raise ConfigError(f"{section}.{name} must be an integer, got {value!r}")
        if value < 0:
            raise ConfigError(f"{section}.{name} must not be negative")


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be an object")
    return value


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    """The count and byte caps are the hard ceiling; clients' submissions meet a bound in
    time first (node/admission.py), counted in weight, one per order action a tx carries
    (node/txweight.py; the floor and the per-signer minimum too, despite the ``_txs`` of
    the floor's name, kept for existing configs): admitted only what the measured commit
    rate commits within ``admission_window_ms`` (0 turns it off), the wait plus the tx's
    own block; the proposer reaps at most ``reap_window_ms`` of the rate into a block
    (never less than half the floor; 0: only the consensus limits). The pending set's
    bound is never below ``admission_floor_txs``, and a signer holds at most
    ``max(per_signer_min, bound / active signers)`` of it. Clients' txs are gossiped at most once per ``gossip_gap_ms``
    (the first at once; 0: a frame per admitted batch)."""

    max_txs: int = 50_000
    max_bytes: int = 64_000_000
    admission_window_ms: int = 800
    admission_floor_txs: int = 2000
    per_signer_min: int = 100
    reap_window_ms: int = 250
    gossip_gap_ms: int = 50

    def __post_init__(self) -> None:
        _ints("mempool", self, ("max_txs", "max_bytes", "admission_window_ms", "admission_floor_txs",
                                "per_signer_min", "reap_window_ms", "gossip_gap_ms"))
        if self.gossip_gap_ms > MAX_GOSSIP_GAP_MS:
            raise ValueError(f"mempool: gossip_gap_ms above {MAX_GOSSIP_GAP_MS} would hold txs from the "
                             "other proposers for blocks")


MAX_PROOF_HEIGHTS = 10_000  # each kept height holds the tree nodes and values later blocks replaced


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Retention: keep the last ``retain_blocks`` blocks (0 keeps all); write a state
    snapshot every ``snapshot_interval`` heights (0: never) and keep the newest
    ``keep_snapshots``. ``state_sync_from`` (a snapshot file or a node's RPC URL) seeds
    a fresh node from a snapshot instead of replaying from genesis. ``proof_heights``: how
    many heights before the latest ``/proof`` can prove state at (node/proofs.py; 0 keeps
    only the latest, which no block certifies yet, so no proofs are served). Each kept height
    holds the tree nodes later blocks replaced, ~0.75 kB per write (docs/operator.md)."""

    retain_blocks: int = 0
    snapshot_interval: int = 0
    keep_snapshots: int = 2
    state_sync_from: str = ""
    proof_heights: int = 20

    def __post_init__(self) -> None:
        _ints("storage", self, ("retain_blocks", "snapshot_interval", "keep_snapshots"))
        if type(self.state_sync_from) is not str:
            raise ConfigError("storage.state_sync_from must be a file path or an RPC URL (text)")
        if type(self.proof_heights) is not int or not 0 <= self.proof_heights <= MAX_PROOF_HEIGHTS:
            raise ValueError(f"storage.proof_heights must be an integer in [0, {MAX_PROOF_HEIGHTS}]")
        if self.retain_blocks and self.snapshot_interval and self.retain_blocks < 2 * self.snapshot_interval:
            raise ValueError("retain_blocks must be at least 2 x snapshot_interval, so peers starting "
                             "from a snapshot can fetch the blocks after it")


@dataclass(frozen=True, slots=True)
class OracleConfig:
    """A validator's price feed: every ``interval_ms`` it signs an OraclePrices transaction
    with its validator key. ``prices`` maps asset symbols to collateral units per whole
    unit (BTC at $60,000 with 6-decimal USDC is 60000000000). A devnet uses a static feed;
    a production validator would point this at its own price source."""

    prices: dict[str, int] = field(default_factory=dict)
    interval_ms: int = 2000

    def __post_init__(self) -> None:
        if not isinstance(self.prices, dict) or not all(
                type(k) is str and type(v) is int and v > 0 for k, v in self.prices.items()):
            raise ConfigError("oracle.prices must map asset symbols to positive integers")
        _ints("oracle", self, ("interval_ms",))
        if self.interval_ms == 0:
            raise ConfigError("oracle.interval_ms must be positive")


@dataclass(frozen=True, slots=True)
class RpcLimits:
    """Per-client limits of the RPC (a client is its remote address; docs/operator.md):
    one client may spend ``client_read_share_pct`` percent of the loop time the node gives
    reads (node/readbudget.py) and post ``client_submit_kib_per_s`` KiB of request bodies a
    second with a burst of ``client_submit_burst_kib``, and all of them together
    ``node_submit_kib_per_s`` with a burst of ``node_submit_burst_kib``
    (node/submitlimit.py); ``exempt``
    addresses have neither limit (loopback by default: the operator's own tools and a
    devnet's load generator). ``max_ws_subscriptions``: the node's websocket subscriptions
    in all, ``/ws`` and ``/websocket`` together, ``max_ws_subscriptions_per_address`` those of
    one client address (node/wsquota.py)."""

    client_read_share_pct: int = 25
    client_submit_kib_per_s: int = 256  # node/submitlimit.py's defaults, which say why
    client_submit_burst_kib: int = 1024
    node_submit_kib_per_s: int = 4096
    node_submit_burst_kib: int = 16384
    max_ws_subscriptions: int = 10_000
    max_ws_subscriptions_per_address: int = 1_000  # node/wsquota.py's default, which says why
    exempt: tuple[str, ...] = ("127.0.0.1", "::1")

    def __post_init__(self) -> None:
        _ints("rpc_limits", self, ("client_read_share_pct", "client_submit_kib_per_s", "client_submit_burst_kib",
                                   "node_submit_kib_per_s", "node_submit_burst_kib",
                                   "max_ws_subscriptions", "max_ws_subscriptions_per_address"))
        if not 1 <= self.client_read_share_pct <= 100:
            raise ConfigError("rpc_limits.client_read_share_pct must be in [1, 100]")
        if not (1 <= self.client_submit_kib_per_s <= MAX_SUBMIT_KIB and 1 <= self.client_submit_burst_kib <= MAX_SUBMIT_KIB):
            raise ConfigError(f"rpc_limits.client_submit_kib_per_s and client_submit_burst_kib must be in [1, {MAX_SUBMIT_KIB}]")
        if not (1 <= self.node_submit_kib_per_s <= MAX_SUBMIT_KIB and 1 <= self.node_submit_burst_kib <= MAX_SUBMIT_KIB):
            raise ConfigError(f"rpc_limits.node_submit_kib_per_s and node_submit_burst_kib must be in [1, {MAX_SUBMIT_KIB}]")
        if not 1 <= self.max_ws_subscriptions <= MAX_WS_SUBSCRIPTIONS:
            raise ConfigError(f"rpc_limits.max_ws_subscriptions must be in [1, {MAX_WS_SUBSCRIPTIONS}]")
        if not 1 <= self.max_ws_subscriptions_per_address <= MAX_WS_SUBSCRIPTIONS:
            raise ConfigError(f"rpc_limits.max_ws_subscriptions_per_address must be in [1, {MAX_WS_SUBSCRIPTIONS}]")
        if not isinstance(self.exempt, (list, tuple)) or not all(type(a) is str for a in self.exempt):
            raise ConfigError("rpc_limits.exempt must be a list of IP addresses")
        for text in self.exempt:
            try:
                ipaddress.ip_address(text)
            except ValueError:
                raise ConfigError(f"rpc_limits.exempt: {text!r} is not an IP address") from None
        object.__setattr__(self, "exempt", tuple(self.exempt))


@dataclass(frozen=True, slots=True)
class TestSwitches:
    """Fault injection for the chaos suite; never set on a real network."""

    equivocate: bool = False
    slow_propose_ms: int = 0
    allow_isolate: bool = False  # enables POST /debug/isolate (drop all p2p traffic for a while)
    allow_oracle_override: bool = False  # enables POST /debug/oracle (move this validator's feed)

    def __post_init__(self) -> None:
        for name in ("equivocate", "allow_isolate", "allow_oracle_override"):
            _flag(getattr(self, name), f"test.{name}")
        _ints("test", self, ("slow_propose_ms",))


@dataclass(frozen=True, slots=True)
class NodeConfig:
    home: Path
    moniker: str
    rpc_host: str
    rpc_port: int
    p2p_listen: str
    p2p_peers: tuple[str, ...]
    # A connected peer silent this long (no pong to our 1 s pings, no frame) has its
    # connections closed and is redialed; 0 turns the keepalive off (node/p2p/keepalive.py).
    p2p_peer_timeout_ms: int = 3000
    # libp2p in a worker process beside the node (node/p2p/process.py says why); false runs
    # it on the node's own event loop thread (node/p2p/bridge.py).
    p2p_worker_process: bool = True
    # clients' HTTP in a front-end process (node/frontend/process.py says why); false serves
    # it on the node's own event loop thread
    rpc_frontend_process: bool = True
    consensus: ConsensusConfig = field(default_factory=lambda: ConsensusConfig.from_node_json({}))
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    rpc_limits: RpcLimits = field(default_factory=RpcLimits)
    test: TestSwitches = field(default_factory=TestSwitches)

    # ------------------------------------------------------------------ paths
    @property
    def genesis_path(self) -> Path:
        return self.home / "genesis.json"

    @property
    def validator_key_path(self) -> Path:
        return self.home / "keys" / "validator.json"

    @property
    def p2p_key_path(self) -> Path:
        return self.home / "keys" / "p2p.key"

    @property
    def state_dir(self) -> Path:
        return self.home / "data" / "state"

    @property
    def blocks_dir(self) -> Path:
        return self.home / "data" / "blocks"

    @property
    def wal_dir(self) -> Path:
        return self.home / "data" / "wal"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "data" / "evidence"

    @property
    def mempool_dir(self) -> Path:
        return self.home / "data" / "mempool"

    @property
    def snapshots_dir(self) -> Path:
        return self.home / "data" / "snapshots"

    @property
    def state_sync_pending_path(self) -> Path:
        """Present while the state came from a snapshot that block h+1 has not certified yet
        (node/syncverify.py): the node neither serves exchange state nor votes."""
        return self.home / "data" / "state_sync.pending"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "node.log"

    @property
    def pid_path(self) -> Path:
        return self.home / "node.pid"

    def validator_key(self) -> PrivateKey | None:
        if not self.validator_key_path.exists():
            return None
        doc = json.loads(self.validator_key_path.read_text())
        key = PrivateKey.from_hex(doc["seed"])
        if "pubkey" in doc and doc["pubkey"] != key.pubkey.hex():  # an edited or mixed-up file
            raise ValueError(f"its pubkey {str(doc['pubkey'])[:16]}... is not its seed's {key.pubkey.hex()[:16]}...")
        return key

    @classmethod
    def load(cls, home: str | os.PathLike[str]) -> NodeConfig:
        """Read HOME/config.json; anything malformed is a ``ConfigError`` naming the field."""
        root = Path(home)
        try:
            doc = json.loads((root / "config.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise ConfigError(f"not JSON: {err}") from None
        if not isinstance(doc, dict):
            raise ConfigError("must be a JSON object")
        try:
            return cls._from_doc(root, doc)
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as err:  # a missing section, an unknown or mistyped field
            raise ConfigError(f"{type(err).__name__}: {err}") from None

    @classmethod
    def _from_doc(cls, root: Path, doc: dict[str, Any]) -> NodeConfig:
        for name in ("rpc", "p2p"):
            if not isinstance(doc.get(name), dict):
                raise ConfigError(f"{name} must be an object (it is required)")
        rpc, p2p = doc["rpc"], doc["p2p"]
        port = rpc.get("port")
        if type(port) is not int or not 0 <= port <= 65535:
            raise ConfigError(f"rpc.port must be an integer in [0, 65535], got {port!r}")
        if type(rpc.get("host", "")) is not str or type(doc.get("moniker", "")) is not str:
            raise ConfigError("rpc.host and moniker must be text")
        peers = p2p.get("peers", [])
        if type(p2p.get("listen")) is not str or not isinstance(peers, list) or not all(type(x) is str for x in peers):
            raise ConfigError("p2p.listen must be a multiaddr and p2p.peers a list of multiaddrs")
        # parsed here as the p2p worker will (a bad one was its traceback); imported here:
        # libp2p is heavy, and only a starting node needs it
        from multiaddr import Multiaddr

        from node.p2p.peers import parse_peer_multiaddr
        try:
            Multiaddr(p2p["listen"])
            for text in peers:
                parse_peer_multiaddr(text)
        except Exception as err:  # multiaddr's parse errors share no base class with ValueError
            raise ConfigError(f"p2p: {err}") from None
        return cls(
            home=root,
            moniker=doc.get("moniker", root.name),
            rpc_host=rpc.get("host", "127.0.0.1"),
            rpc_port=int(rpc["port"]),
            p2p_listen=p2p["listen"],
            p2p_peers=tuple(peers),
            p2p_peer_timeout_ms=_peer_timeout_ms(p2p.get("peer_timeout_ms", 3000)),
            p2p_worker_process=_flag(p2p.get("worker_process", True), "p2p.worker_process"),
            rpc_frontend_process=_flag(rpc.get("frontend_process", True), "rpc.frontend_process"),
            consensus=ConsensusConfig.from_node_json(_section(doc, "consensus")),
            mempool=MempoolConfig(**_section(doc, "mempool")),
            storage=StorageConfig(**_section(doc, "storage")),
            oracle=OracleConfig(**_section(doc, "oracle")),
            rpc_limits=RpcLimits(**_section(doc, "rpc_limits")),
            test=TestSwitches(**_section(doc, "test")),
        )


def _flag(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{name} must be true or false")
    return value


def _peer_timeout_ms(value: Any) -> int:
    """0 (off) or at least 500 ms: shorter than a couple of ping intervals would close
    healthy connections whenever a busy peer answers late."""
    if type(value) is not int or not (value == 0 or 500 <= value <= 600_000):
        raise ValueError("p2p.peer_timeout_ms must be 0 (off) or an integer in [500, 600000]")
    return value


def write_validator_key(path: Path, key: PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seed": key.hex(), "pubkey": key.pubkey.hex()}))
    path.chmod(0o600)
