"""What the RPC server and the consensus driver may use of a running node, and nothing more.

``NodeRuntime`` (node/runtime.py) owns every part of a node and satisfies both protocols;
the RPC server and the driver are typed against these instead of against the runtime, so
mypy holds them to this surface, and a test can drive either with a fake that has only
these members. The RPC never touches the mempool, the WAL or consensus; the driver never
serves RPC or metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from node.blockstore import BlockStore
    from node.config import NodeConfig
    from node.diskfull import StorageFailure
    from node.events import EventBus
    from node.evidence_pool import EvidencePool
    from node.execution import Execution
    from node.faults import Faults
    from node.mempool import Admission, Mempool
    from node.metrics import NodeMetrics
    from node.syncverify import Anchor
    from node.wal_file import WalFile
    from state.genesis import Genesis
    from state.machine import StateMachine


class Network(Protocol):
    """What the node uses of its p2p layer: ``P2PNode`` (libp2p on the node's own thread,
    node/p2p/host.py) and ``P2PProcess`` (libp2p in a worker process, node/p2p/process.py)
    both provide it."""

    peer_id: str

    def send(self, peer_id: str, protocol_id: str, frame: bytes) -> bool: ...

    def broadcast(self, protocol_id: str, frame: bytes) -> int: ...

    async def request(self, peer_id: str, protocol_id: str, payload: bytes, timeout_s: float = 10.0) -> bytes: ...

    def connected_peers(self) -> list[str]: ...

    def metrics_snapshot(self) -> dict[str, Any]: ...

    async def stop(self) -> None: ...


class RpcHost(Protocol):
    """The RPC server's view: committed state and blocks to read, commits to wait for, a
    bus of events to stream, a way to submit transactions, status and metrics."""

    sm: StateMachine
    blocks: BlockStore
    execution: Execution
    bus: EventBus
    genesis: Genesis
    config: NodeConfig
    faults: Faults
    p2p: Network
    metrics: NodeMetrics
    evidence_pool: EvidencePool
    sync_pending: Anchor | None  # a snapshot block h+1 has not certified yet: serve no exchange state

    async def submit(self, raws: list[bytes]) -> list[Admission]: ...

    def status(self) -> dict[str, Any]: ...

    def metrics_text(self) -> str: ...


class DriverHost(Protocol):
    """The consensus driver's view: the network, the mempool to reap, execution and the
    block store to commit into, the WAL, fault injection, and the committed height."""

    sm: StateMachine
    blocks: BlockStore
    execution: Execution
    mempool: Mempool
    genesis: Genesis
    config: NodeConfig
    faults: Faults
    p2p: Network
    wal: WalFile
    evidence_pool: EvidencePool

    def after_commit(self, height: int) -> None: ...

    async def peers_pruned(self, height: int, lowest: int) -> bool: ...

    def fail_storage(self, err: StorageFailure) -> None: ...

    def fail(self, reason: str) -> None: ...
