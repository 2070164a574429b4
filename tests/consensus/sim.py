"""A deterministic network simulator for ``ConsensusCore``.

Everything random comes from one ``random.Random(seed)``, time is a virtual clock, and
events are processed from a heap ordered by (time, sequence number), so a seed replays
exactly. The simulator plays the node's role: it performs the core's actions (WAL
appends, broadcasts through a lossy network, timers, block storage and application),
answers block-sync requests from peers' stores, crashes nodes (optionally leaving a torn
WAL tail) and restarts them from their WAL, and can make one validator byzantine: it
sends different votes and proposals to different halves of the network.

Checks performed while running (they raise ``AssertionError``):
- safety: no two honest nodes commit different blocks at a height;
- no honest validator ever signs two different votes for one (height, round, type),
  across crashes and restarts;
- every committed block's certificate verifies against the validator set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from consensus import (
    Block,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    CommitCertificate,
    ConsensusConfig,
    ConsensusCore,
    Event,
    Evidence,
    Proposal,
    ProposalReceived,
    RecordWal,
    RequestSync,
    ScheduleTimeout,
    Start,
    SyncedBlock,
    TimeoutFired,
    ValidatorSet,
    Vote,
    VoteReceived,
    decode_message,
    decode_stream,
    encode_message,
    encode_record,
    make_block,
)
from consensus.messages import NIL
from consensus.steps import RoundStep
from consensus.wal import WalStep
from state.keys import PrivateKey

CHAIN_ID = "sim-chain"
GENESIS_APP_HASH = hashlib.sha256(b"genesis").digest()
GENESIS_TIME_MS = 1_000_000

SIM_CONFIG = ConsensusConfig(
    timeout_propose_ms=400,
    timeout_propose_delta_ms=100,
    timeout_prevote_ms=150,
    timeout_prevote_delta_ms=50,
    timeout_precommit_ms=150,
    timeout_precommit_delta_ms=50,
    timeout_commit_ms=100,
    rebroadcast_interval_ms=300,
)


def make_keys(n: int, salt: int = 0) -> list[PrivateKey]:
    return [PrivateKey(hashlib.sha256(b"sim-key-%d-%d" % (salt, i)).digest()) for i in range(n)]


class SimApp:
    """A deterministic application: proposes a few numbered txs, accepts "tx:" and "byz:"."""

    def __init__(self, index: int, txs_per_block: int) -> None:
        self.index = index
        self.txs_per_block = txs_per_block

    def propose_txs(self, height: int) -> list[bytes]:
        return [b"tx:%d:%d:%d" % (self.index, height, i) for i in range(self.txs_per_block)]

    def validate_block(self, block: Block) -> bool:
        return all(tx.startswith((b"tx:", b"byz:")) for tx in block.txs)


@dataclass
class Partition:
    start_ms: int
    end_ms: int
    groups: list[set[int]]  # nodes not listed form one more group


@dataclass
class Crash:
    node: int
    at_ms: int
    restart_ms: int
    torn_tail: bool = True


@dataclass
class Scenario:
    validators: int = 4
    observers: int = 0
    powers: list[int] | None = None
    seed: int = 0
    duration_ms: int = 20_000
    min_delay_ms: int = 2
    max_delay_ms: int = 40
    drop_permille: int = 0
    clock_skew_ms: int = 100
    txs_per_block: int = 2
    byzantine: set[int] = field(default_factory=set)
    partitions: list[Partition] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)
    config: ConsensusConfig = SIM_CONFIG


@dataclass
class SimNode:
    index: int
    key: PrivateKey | None
    app: SimApp
    skew_ms: int
    byzantine: bool = False
    core: ConsensusCore | None = None
    incarnation: int = 0
    wal: bytearray = field(default_factory=bytearray)
    blocks: dict[int, tuple[Block, CommitCertificate]] = field(default_factory=dict)
    app_hash: bytes = GENESIS_APP_HASH
    commit_times: dict[int, int] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    pending_sync: dict[int, tuple[Block, CommitCertificate]] = field(default_factory=dict)
    restarts: int = 0
    torn_bytes_truncated: int = 0

    @property
    def up(self) -> bool:
        return self.core is not None

    @property
    def height(self) -> int:
        """Highest committed height."""
        return max(self.blocks, default=0)


@dataclass
class SimResult:
    scenario: Scenario
    nodes: list[SimNode]
    end_ms: int
    heal_ms: int
    height_at_heal: int
    messages_sent: int
    messages_dropped: int

    @property
    def honest(self) -> list[SimNode]:
        return [n for n in self.nodes if not n.byzantine]

    @property
    def min_honest_height(self) -> int:
        return min(n.height for n in self.honest)

    @property
    def max_honest_height(self) -> int:
        return max(n.height for n in self.honest)

    def chain(self, node: SimNode) -> list[bytes]:
        return [node.blocks[h][0].hash for h in sorted(node.blocks)]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for node in self.nodes:
            for h in sorted(node.blocks):
                digest.update(node.blocks[h][0].hash)
            digest.update(b"|%d|" % node.commit_times.get(node.height, 0))
        return digest.hexdigest()


# event kinds in the heap
_DELIVER = 0
_TIMER = 1
_CRASH = 2
_RESTART = 3
_SYNC_REQUEST = 4
_SYNC_RESPONSE = 5


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        total = scenario.validators + scenario.observers
        keys = make_keys(scenario.validators, salt=scenario.seed % 3)
        powers = scenario.powers or [1] * scenario.validators
        self.validators = ValidatorSet([(k.pubkey, p) for k, p in zip(keys, powers, strict=True)])
        self.nodes: list[SimNode] = []
        for i in range(total):
            key = keys[i] if i < scenario.validators else None
            skew = self.rng.randint(-scenario.clock_skew_ms, scenario.clock_skew_ms)
            node = SimNode(i, key, SimApp(i, scenario.txs_per_block), skew, i in scenario.byzantine)
            self.nodes.append(node)
        self.queue: list[tuple[int, int, int, int, Any]] = []
        self.seq = 0
        self.now = 0
        self.signed: dict[tuple[bytes, int, int, int], bytes] = {}
        self.byz_split: dict[tuple[int, int], tuple[set[int], bytes, bytes]] = {}
        self.decided: dict[int, bytes] = {}
        self.sent = 0
        self.dropped = 0

    # ------------------------------------------------------------------ scheduling
    def push(self, at_ms: int, kind: int, node: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at_ms, self.seq, kind, node, payload))

    def node_now(self, node: SimNode) -> int:
        return GENESIS_TIME_MS + self.now + node.skew_ms

    def partitioned(self, a: int, b: int) -> bool:
        for part in self.scenario.partitions:
            if part.start_ms <= self.now < part.end_ms:
                return self._group(part, a) != self._group(part, b)
        return False

    @staticmethod
    def _group(part: Partition, node: int) -> int:
        for i, group in enumerate(part.groups):
            if node in group:
                return i
        return len(part.groups)

    # ------------------------------------------------------------------ network
    def send(self, src: int, dst: int, kind: int, payload: Any) -> None:
        self.sent += 1
        if self.partitioned(src, dst) or self.rng.randrange(1000) < self.scenario.drop_permille:
            self.dropped += 1
            return
        delay = self.rng.randint(self.scenario.min_delay_ms, self.scenario.max_delay_ms)
        self.push(self.now + delay, kind, dst, payload)

    def broadcast(self, src: SimNode, message: Proposal | Vote, own: bool = True) -> None:
        if src.byzantine and own:
            self.equivocate(src, message)
            return
        data = encode_message(message)
        for node in self.nodes:
            if node.index != src.index:
                self.send(src.index, node.index, _DELIVER, data)

    def equivocate(self, src: SimNode, message: Proposal | Vote) -> None:
        """Byzantine: split the peers in two halves per (height, round), shared by all
        byzantine validators (they collude). A byzantine proposer sends block A to one half
        and block B to the other; then every byzantine vote of that round goes for A to the
        first half and for B to the second, whatever its own core decided. In other rounds
        its real vote goes to one half and a conflicting one (nil or a random hash) to the
        other."""
        assert src.key is not None
        key = (message.height, message.round)
        split = self.byz_split.get(key)
        if split is None:
            peers = [n.index for n in self.nodes]
            self.rng.shuffle(peers)
            split = (set(peers[: len(peers) // 2]), b"", b"")
            self.byz_split[key] = split
        first_half, hash_a, hash_b = split
        first: Proposal | Vote = message
        other: Proposal | Vote
        if isinstance(message, Vote):
            if hash_a:
                first = Vote.create(
                    src.key, CHAIN_ID, message.type, message.height, message.round, hash_a
                )
                alt_hash = hash_b
            else:
                alt_hash = NIL if message.block_hash else self.rng.randbytes(32)
            other = Vote.create(
                src.key, CHAIN_ID, message.type, message.height, message.round, alt_hash
            )
        else:
            header = message.block.header
            alt_txs = (*message.block.txs, b"byz:%d" % self.rng.randrange(1 << 30))
            alt_block = make_block(
                chain_id=header.chain_id,
                height=header.height,
                round=header.round,
                time_ms=header.time_ms,
                prev_block_hash=header.prev_block_hash,
                prev_app_hash=header.prev_app_hash,
                proposer=header.proposer,
                txs=alt_txs,
            )
            other = Proposal.create(
                src.key, CHAIN_ID, message.height, message.round, message.pol_round, alt_block
            )
            if not hash_a:
                self.byz_split[key] = (first_half, message.block_hash, alt_block.hash)
        for peer in sorted(n.index for n in self.nodes if n.index != src.index):
            chosen = first if peer in first_half else other
            self.send(src.index, peer, _DELIVER, encode_message(chosen))

    # ------------------------------------------------------------------ driving cores
    def deliver(self, node: SimNode, event: Event) -> None:
        """Feed ``event`` and everything it causes (Start after commit, queued sync blocks)."""
        inbox: list[Event] = [event]
        while inbox and node.core is not None:
            actions = node.core.handle(inbox.pop(0))
            for action in actions:
                follow_up = self.perform(node, action)
                if follow_up is not None:
                    inbox.append(follow_up)

    def perform(self, node: SimNode, action: Any) -> Event | None:
        if isinstance(action, RecordWal):
            node.wal += encode_record(action.record)
        elif isinstance(action, BroadcastVote):
            own = node.key is not None and action.vote.validator == node.key.pubkey
            if own and not node.byzantine:
                self.check_no_double_sign(action.vote)
            self.broadcast(node, action.vote, own=own)
        elif isinstance(action, BroadcastProposal):
            self.broadcast(node, action.proposal)
        elif isinstance(action, ScheduleTimeout):
            payload = (node.incarnation, action.height, action.round, action.step)
            self.push(self.now + action.delay_ms, _TIMER, node.index, payload)
        elif isinstance(action, CommitBlock):
            return self.commit(node, action.block, action.certificate)
        elif isinstance(action, Evidence):
            assert action.verify(self.validators, CHAIN_ID)
            node.evidence.append(action)
        elif isinstance(action, RequestSync):
            peers = [n.index for n in self.nodes if n.index != node.index]
            peer = self.rng.choice(peers)
            self.send(node.index, peer, _SYNC_REQUEST, (node.index, action.height))
        else:  # pragma: no cover
            raise AssertionError(f"unexpected action {action!r}")
        return None

    def check_no_double_sign(self, vote: Vote) -> None:
        key = (vote.validator, vote.height, vote.round, int(vote.type))
        previous = self.signed.setdefault(key, vote.block_hash)
        assert previous == vote.block_hash, f"honest validator double-signed {key}"

    def commit(self, node: SimNode, block: Block, cert: CommitCertificate) -> Event | None:
        height = block.height
        assert height == node.height + 1, "commits must be consecutive"
        assert cert.verify(self.validators, CHAIN_ID), "certificate does not verify"
        assert cert.block_hash == block.hash
        if not node.byzantine:
            agreed = self.decided.setdefault(height, block.hash)
            assert agreed == block.hash, f"SAFETY VIOLATION at height {height}"
        node.blocks[height] = (block, cert)
        node.commit_times[height] = self.now
        node.app_hash = hashlib.sha256(node.app_hash + block.hash).digest()
        node.pending_sync.pop(height, None)
        return Start(
            height + 1, block.hash, node.app_hash, block.header.time_ms, self.node_now(node)
        )

    def next_sync(self, node: SimNode) -> None:
        core = node.core
        if core is None:
            return
        item = node.pending_sync.get(core.height)
        if item is not None and core.decided is None:
            self.deliver(node, SyncedBlock(item[0], item[1]))

    def boot(self, node: SimNode) -> None:
        """(Re)create the core from the node's WAL and block store, as a node does at start."""
        records, clean = decode_stream(bytes(node.wal))
        node.torn_bytes_truncated += len(node.wal) - clean
        del node.wal[clean:]
        node.core = ConsensusCore(
            CHAIN_ID, self.validators, node.app, self.scenario.config, node.key
        )
        node.core.restore(records)
        height = node.height
        if height == 0:
            start = Start(1, b"", GENESIS_APP_HASH, GENESIS_TIME_MS, self.node_now(node))
        else:
            block = node.blocks[height][0]
            start = Start(
                height + 1, block.hash, node.app_hash, block.header.time_ms, self.node_now(node)
            )
        self.deliver(node, start)
        self.after_event(node)

    def after_event(self, node: SimNode) -> None:
        # A core may have reached a height for which a sync response is already waiting.
        while node.core is not None:
            before = node.core.height
            self.next_sync(node)
            if node.core is None or node.core.height == before:
                return

    # ------------------------------------------------------------------ main loop
    def run(self) -> SimResult:
        scenario = self.scenario
        for crash in scenario.crashes:
            self.push(crash.at_ms, _CRASH, crash.node, crash.torn_tail)
            self.push(crash.restart_ms, _RESTART, crash.node, None)
        for node in self.nodes:
            self.boot(node)
        heal_ms = max(
            [p.end_ms for p in scenario.partitions] + [c.restart_ms for c in scenario.crashes] + [0]
        )
        height_at_heal = -1
        while self.queue and self.queue[0][0] <= scenario.duration_ms:
            at_ms, _, kind, index, payload = heapq.heappop(self.queue)
            if height_at_heal < 0 and at_ms >= heal_ms:
                height_at_heal = max(n.height for n in self.nodes if not n.byzantine)
            self.now = at_ms
            node = self.nodes[index]
            self.dispatch(node, kind, payload)
        if height_at_heal < 0:
            height_at_heal = max(n.height for n in self.nodes if not n.byzantine)
        return SimResult(
            scenario,
            self.nodes,
            self.now,
            heal_ms,
            height_at_heal,
            self.sent,
            self.dropped,
        )

    def dispatch(self, node: SimNode, kind: int, payload: Any) -> None:
        if kind == _CRASH:
            if node.core is not None:
                node.core = None
                node.incarnation += 1
                if payload:
                    # The write that was in flight at the crash: a frame cut short.
                    frame = encode_record(WalStep(node.height + 1, 99, RoundStep.PRECOMMIT))
                    node.wal += frame[: self.rng.randint(1, len(frame) - 1)]
            return
        if kind == _RESTART:
            if node.core is None:
                node.restarts += 1
                self.boot(node)
            return
        if node.core is None:
            return
        if kind == _TIMER:
            incarnation, height, round_, step = payload
            if incarnation == node.incarnation:
                self.deliver(node, TimeoutFired(height, round_, step, self.node_now(node)))
        elif kind == _DELIVER:
            message = decode_message(payload)
            now = self.node_now(node)
            event: Event = (
                VoteReceived(message, now)
                if isinstance(message, Vote)
                else ProposalReceived(message, now)
            )
            self.deliver(node, event)
        elif kind == _SYNC_REQUEST:
            requester, from_height = payload
            items = [
                node.blocks[h] for h in range(from_height, from_height + 20) if h in node.blocks
            ]
            if items:
                self.send(node.index, requester, _SYNC_RESPONSE, items)
        elif kind == _SYNC_RESPONSE:
            for block, cert in payload:
                if block.height > node.height:
                    node.pending_sync[block.height] = (block, cert)
        self.after_event(node)


def run(scenario: Scenario) -> SimResult:
    return Simulation(scenario).run()


def random_scenario(seed: int, validators: int) -> Scenario:
    """A seeded mix of faults: drops, a healing partition, a crash with restart, a byzantine
    equivocator (never more faulty validators than f at the same time for liveness)."""
    rng = random.Random(seed * 7919 + validators)
    f = (validators - 1) // 3
    byzantine: set[int] = set()
    crashes: list[Crash] = []
    partitions: list[Partition] = []
    if rng.random() < 0.6:
        # Up to f byzantine validators; several of them collude (one split per round).
        count = rng.randint(1, f)
        byzantine.update(rng.sample(range(validators), count))
    honest = [i for i in range(validators) if i not in byzantine]
    if rng.random() < 0.6:
        node = rng.choice(honest)
        at = rng.randint(500, 5000)
        crashes.append(Crash(node, at, at + rng.randint(200, 3000), torn_tail=rng.random() < 0.7))
    if rng.random() < 0.6:
        start = rng.randint(500, 6000)
        members = list(range(validators))
        rng.shuffle(members)
        cut = rng.randint(1, validators - 1)
        partitions.append(Partition(start, start + rng.randint(500, 4000), [set(members[:cut])]))
    # Half the scenarios run the node's default, an idle chain that waits for transactions
    # (a separate generator, so the faults each seed draws stay as they were). The sim
    # feeds no TxsReady: only the proposer, whose reap is never empty, proposes at once,
    # and the others wait the interval before their propose timeout starts, the slowest
    # path a dead or cut-off proposer gives.
    waits = random.Random(seed * 31 + validators + 1).random() < 0.5
    config = (dataclasses.replace(SIM_CONFIG, create_empty_blocks=False, empty_block_interval_ms=300)
              if waits else SIM_CONFIG)
    return Scenario(
        validators=validators,
        config=config,
        observers=1 if rng.random() < 0.3 else 0,
        seed=seed,
        duration_ms=14_000,
        drop_permille=rng.choice([0, 20, 50, 100]),
        max_delay_ms=rng.choice([20, 60, 150]),
        byzantine=byzantine,
        crashes=crashes,
        partitions=partitions,
    )
