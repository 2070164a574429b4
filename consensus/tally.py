"""Vote tallies for one height: per (round, vote type) and per value, one vote per validator.

Why per value and not just "one vote per validator": a validator that signs two different
votes for the same (height, round, type) is equivocating. Counting a validator at most
once *per value* is still safe (two >2/3 quorums for different values would need a
correct validator to vote for both), and it is needed for liveness: if a byzantine
validator sends a nil prevote to one node and a block prevote to another, the node that
heard "nil" first must still be able to see the polka the others saw, or the validators
locked on that block can never convince it. The "any value" power (timeout rules)
counts each validator once, with its first vote.
"""

from __future__ import annotations

from consensus.messages import Vote, VoteType
from consensus.validators import ValidatorSet


class VoteSet:
    """Votes of one type in one round."""

    __slots__ = ("_by_hash", "_first", "_power_by_hash", "total_power")

    def __init__(self) -> None:
        self._first: dict[bytes, Vote] = {}
        self._by_hash: dict[bytes, dict[bytes, Vote]] = {}
        self._power_by_hash: dict[bytes, int] = {}
        self.total_power = 0  # distinct validators, each counted once

    def __len__(self) -> int:
        return len(self._first)

    def get(self, validator: bytes) -> Vote | None:
        """The first vote of ``validator`` in this set."""
        return self._first.get(validator)

    def has(self, validator: bytes, block_hash: bytes) -> bool:
        voters = self._by_hash.get(block_hash)
        return voters is not None and validator in voters

    def values_of(self, validator: bytes) -> int:
        """How many different values ``validator`` has votes for here (>1 = equivocation)."""
        return sum(1 for voters in self._by_hash.values() if validator in voters)

    def add(self, vote: Vote, power: int) -> None:
        """Count ``vote``; the caller checked ``has`` is false and the signature is valid."""
        voters = self._by_hash.setdefault(vote.block_hash, {})
        if vote.validator in voters:
            raise ValueError("validator already voted for this value in this set")
        voters[vote.validator] = vote
        self._power_by_hash[vote.block_hash] = self._power_by_hash.get(vote.block_hash, 0) + power
        if vote.validator not in self._first:
            self._first[vote.validator] = vote
            self.total_power += power

    def power_for(self, block_hash: bytes) -> int:
        return self._power_by_hash.get(block_hash, 0)

    def quorum_hash(self, validators: ValidatorSet) -> bytes | None:
        """The value (``b""`` = nil) with more than 2/3 of the power, if any.

        At most one exists while byzantine power is below 1/3; ties are broken by the
        smallest hash so that every node would pick the same one regardless."""
        for block_hash in sorted(self._power_by_hash):
            if validators.is_quorum(self._power_by_hash[block_hash]):
                return block_hash
        return None

    def votes_for(self, block_hash: bytes) -> list[Vote]:
        """Votes for ``block_hash``, sorted by validator public key."""
        voters = self._by_hash.get(block_hash, {})
        return [voters[k] for k in sorted(voters)]


_EMPTY = VoteSet()


class HeightVotes:
    """All vote sets of the current height, created on first use."""

    __slots__ = ("_sets",)

    def __init__(self) -> None:
        self._sets: dict[tuple[int, VoteType], VoteSet] = {}

    def get(self, round: int, vote_type: VoteType) -> VoteSet:
        """The set for (round, type); an empty shared set when nothing arrived (do not add to it)."""
        return self._sets.get((round, vote_type), _EMPTY)

    def existing(self, vote: Vote) -> Vote | None:
        """The first vote of the same validator for the same (round, type), if any."""
        return self.get(vote.round, vote.type).get(vote.validator)

    def has(self, vote: Vote) -> bool:
        """True when this validator's vote for this value is already counted."""
        return self.get(vote.round, vote.type).has(vote.validator, vote.block_hash)

    def add(self, vote: Vote, power: int) -> VoteSet:
        key = (vote.round, vote.type)
        vote_set = self._sets.get(key)
        if vote_set is None:
            vote_set = self._sets[key] = VoteSet()
        vote_set.add(vote, power)
        return vote_set
