"""One frame format for the consensus stream protocol: ``[kind, message]``.

Why here and not in ``node/``: the decoder is part of the protocol's attack surface and
must be as strict as the message decoders (``TxError`` on anything malformed), and the
simulator and benchmarks use the same bytes the network does.
"""

from __future__ import annotations

from consensus.errors import decoder
from consensus.fields import MAX_PROPOSAL_BYTES
from consensus.messages import Proposal, Vote
from state.codec import decode, encode, must_list, must_uint
from state.errors import Code, TxError

KIND_PROPOSAL = 1
KIND_VOTE = 2
MAX_MESSAGE_BYTES = MAX_PROPOSAL_BYTES + 16

ConsensusMessage = Proposal | Vote


def encode_message(message: ConsensusMessage) -> bytes:
    if isinstance(message, Proposal):
        return encode([KIND_PROPOSAL, message.to_list()])
    return encode([KIND_VOTE, message.to_list()])


@decoder
def decode_message(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> ConsensusMessage:
    items = must_list(decode(data, max_bytes=max_bytes), "message", length=2)
    kind = must_uint(items[0], "message kind")
    if kind == KIND_PROPOSAL:
        return Proposal.from_list(items[1])
    if kind == KIND_VOTE:
        return Vote.from_list(items[1])
    raise TxError(Code.MALFORMED, f"unknown consensus message kind {kind}")
