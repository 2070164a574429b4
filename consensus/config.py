"""Consensus parameters. Timeouts are in integer milliseconds and grow linearly with the
round (``base + round * delta``) so that, after GST, some round is long enough for every
honest validator to hear the proposal and the votes (the liveness argument of Tendermint).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from consensus.fields import MAX_BLOCK_TXS, MAX_PROPOSAL_BYTES
from consensus.steps import TimeoutStep


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    timeout_propose_ms: int = 3000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 1000
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 1000
    timeout_precommit_delta_ms: int = 500
    #: Pause after Start before round 0 (CometBFT's timeout_commit); 0 starts at once.
    timeout_commit_ms: int = 0
    #: When False, round 0 waits for TxsReady or ``empty_block_interval_ms`` (0 = forever).
    create_empty_blocks: bool = True
    empty_block_interval_ms: int = 0
    #: A fresh proposal whose time is further ahead of the receiver's clock gets a nil prevote.
    max_clock_drift_ms: int = 5000
    #: Re-send own current-round votes this often (lossy links, restarted peers); 0 = never.
    rebroadcast_interval_ms: int = 1000
    #: Votes further ahead than this many rounds only count for round skipping.
    round_lookahead: int = 8
    #: Own blocks are cut to these limits whatever the application returns (received blocks
    #: are held to the protocol limits only, so nodes with other settings still agree); a
    #: ``max_block_bytes`` above the protocol's ``MAX_BLOCK_BYTES`` is cut to it.
    max_block_txs: int = 10_000
    max_block_bytes: int = MAX_PROPOSAL_BYTES - 8192
    #: Messages for the next height kept until Start (a slower node hears the next height early).
    max_future_messages: int = 4096
    #: Read by the node's driver, which decides when a timeout the core asked for fires (an
    #: input of this sans-IO core, so safety never depends on them): ``timeout_commit_ms``
    #: as the least time from one height's round 0 to the next's, the most the pause after
    #: a commit lasts when transactions already wait (-1: no cap, the pace holds under load;
    #: 0: back-to-back blocks under load), and the percentage of the last block's execution
    #: time added to the round timeouts (a proposer cannot propose before it has executed
    #: the previous block).
    timeout_commit_busy_ms: int = -1
    timeout_execution_pct: int = 200

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if type(value) is int and value < (-1 if item.name == "timeout_commit_busy_ms" else 0):
                raise ValueError(f"{item.name} must not be negative")
        if self.max_block_txs > MAX_BLOCK_TXS:
            raise ValueError(f"max_block_txs is at most {MAX_BLOCK_TXS}")

    @classmethod
    def from_node_json(cls, doc: dict[str, Any]) -> ConsensusConfig:
        """The ``consensus`` section of a node's config.json (node/API.md): the node's own
        defaults (faster rounds than the core's, sized for a devnet), one ``timeout_delta_ms``
        for the three round timeouts' growth. Unknown keys are refused."""
        values: dict[str, Any] = {**NODE_DEFAULTS, **doc}
        unknown = set(values) - set(NODE_DEFAULTS)
        if unknown:
            raise ValueError(f"consensus: unknown fields {sorted(unknown)}")
        for name, value in doc.items():  # of the defaults' types (a bool is no integer here)
            want = type(NODE_DEFAULTS[name])
            if type(value) is not want:
                raise ValueError(f"consensus.{name} must be {'true or false' if want is bool else 'an integer'}")
        delta = values.pop("timeout_delta_ms")
        return cls(timeout_propose_delta_ms=delta, timeout_prevote_delta_ms=delta,
                   timeout_precommit_delta_ms=delta, **values)

    def timeout_ms(self, step: TimeoutStep, round: int) -> int:
        if step == TimeoutStep.PROPOSE:
            return self.timeout_propose_ms + round * self.timeout_propose_delta_ms
        if step == TimeoutStep.PREVOTE:
            return self.timeout_prevote_ms + round * self.timeout_prevote_delta_ms
        if step == TimeoutStep.PRECOMMIT:
            return self.timeout_precommit_ms + round * self.timeout_precommit_delta_ms
        if step == TimeoutStep.NEW_HEIGHT:
            return self.timeout_commit_ms
        if step == TimeoutStep.WAIT_TXS:
            return self.empty_block_interval_ms
        return self.rebroadcast_interval_ms


#: config.json's ``consensus`` section and its defaults (``ConsensusConfig.from_node_json``)
NODE_DEFAULTS: dict[str, Any] = {
    "timeout_propose_ms": 1000,
    "timeout_prevote_ms": 500,
    "timeout_precommit_ms": 500,
    "timeout_delta_ms": 250,
    "timeout_commit_ms": 100,  # heights' round 0 at least this far apart: caps the block rate
    "timeout_commit_busy_ms": -1,
    "timeout_execution_pct": 200,
    # An idle chain waits for transactions (a block at least every second): measured on a
    # 4-validator devnet, the idle CPU of all its processes fell from 42% to 18% of a core
    # and a lone tx's submit-to-commit p50 from 85 to 26 ms (it starts its own block
    # instead of waiting behind an empty one); a loaded mempool never waits.
    "create_empty_blocks": False,
    "empty_block_interval_ms": 1000,
    "max_block_txs": 5000,
    "max_block_bytes": 4_000_000,
}
