"""Tendermint-style BFT consensus as a sans-IO state machine (see ``consensus.core``).

Imports only ``state.codec``, ``state.keys`` and ``state.errors`` from the rest of the
project; no I/O, clocks, threads or randomness.

Driver contract (what ``node/`` and the test simulator do):

1. Build ``ConsensusCore(chain_id, validators, app, config, key)``; ``key=None`` follows.
2. At boot, decode the WAL (``decode_stream``); if ``frame_after`` finds a valid frame
   after the bad one, refuse to start (damage mid-file), else truncate the torn tail;
   ``core.restore``.
3. Feed ``Start(height, prev_block_hash, prev_app_hash, prev_block_time_ms, now_ms)``.
4. Feed every decoded ``Proposal``/``Vote`` (``ProposalReceived``/``VoteReceived``),
   every due timer (``TimeoutFired``), ``TxsReady`` when the mempool has transactions
   (also right after Start), and fetched ``SyncedBlock``s.
5. Perform the returned actions in order: ``RecordWal`` (fsync when ``sync``) before the
   next action; ``BroadcastProposal``/``BroadcastVote`` to all peers; ``ScheduleTimeout``;
   ``CommitBlock``: store block + certificate, apply, then Start the next height;
   ``RequestSync``: fetch blocks from ``height`` on; ``Evidence``: keep or report.
"""

from consensus.actions import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    Evidence,
    RecordWal,
    RequestSync,
    ScheduleTimeout,
)
from consensus.app import App, EmptyApp
from consensus.block import Block, BlockHeader, make_block
from consensus.certificate import CertificateError, CommitCertificate
from consensus.config import ConsensusConfig
from consensus.core import ConsensusCore
from consensus.events import (
    Event,
    ProposalReceived,
    Start,
    SyncedBlock,
    TimeoutFired,
    TxsReady,
    VoteReceived,
)
from consensus.merkle import txs_root
from consensus.messages import NIL, Proposal, Vote, VoteType
from consensus.steps import RoundStep, TimeoutStep
from consensus.validators import Validator, ValidatorSet
from consensus.wal import (
    WalEndHeight,
    WalProposal,
    WalRecord,
    WalStep,
    WalVote,
    WalWriter,
    decode_stream,
    encode_record,
)
from consensus.wire import decode_message, encode_message

__all__ = [
    "NIL",
    "Action",
    "App",
    "Block",
    "BlockHeader",
    "BroadcastProposal",
    "BroadcastVote",
    "CertificateError",
    "CommitBlock",
    "CommitCertificate",
    "ConsensusConfig",
    "ConsensusCore",
    "EmptyApp",
    "Event",
    "Evidence",
    "Proposal",
    "ProposalReceived",
    "RecordWal",
    "RequestSync",
    "RoundStep",
    "ScheduleTimeout",
    "Start",
    "SyncedBlock",
    "TimeoutFired",
    "TimeoutStep",
    "TxsReady",
    "Validator",
    "ValidatorSet",
    "Vote",
    "VoteReceived",
    "VoteType",
    "WalEndHeight",
    "WalProposal",
    "WalRecord",
    "WalStep",
    "WalVote",
    "WalWriter",
    "decode_message",
    "decode_stream",
    "encode_message",
    "encode_record",
    "make_block",
    "txs_root",
]
