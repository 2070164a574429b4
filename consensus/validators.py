"""The fixed validator set from genesis: voting power, quorum thresholds, proposer schedule.

Thresholds are integer comparisons (``3 * power > 2 * total``), never fractions, so every
node agrees on them bit for bit.

Proposer selection is CometBFT's proposer-priority algorithm for a fixed set (smooth
weighted round robin): each step every validator's priority grows by its power, the
highest priority proposes (ties go to the smallest public key) and pays back the total
power. A validator with power p proposes exactly p times in every window of
``total`` steps, spread out rather than in a run, so a dead heavy validator costs isolated
rounds. The proposer of (height, round) is step ``height - 1 + round`` of that schedule,
exactly as in CometBFT where the set advances once per height and once per extra round.
With fixed powers all priorities return to zero after ``total`` steps, so the schedule is
periodic and any step is reachable without replaying the chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import gcd

from consensus.fields import MAX_VALIDATORS
from state.keys import PUBKEY_LEN

#: CometBFT's bound, keeps priorities far away from any overflow in other implementations.
MAX_TOTAL_POWER = (1 << 60) // 8
_WINDOW = 1024


@dataclass(frozen=True, slots=True)
class Validator:
    pubkey: bytes
    power: int


class ValidatorSet:
    """An immutable validator set; the proposer schedule is cached lazily (pure function)."""

    __slots__ = (
        "_checkpoints",
        "_index",
        "_period",
        "_power",
        "_weights",
        "_window",
        "total_power",
        "validators",
    )

    def __init__(self, validators: Iterable[Validator | tuple[bytes, int]]) -> None:
        members = [v if isinstance(v, Validator) else Validator(v[0], v[1]) for v in validators]
        if not members:
            raise ValueError("a validator set cannot be empty")
        if len(members) > MAX_VALIDATORS:
            raise ValueError(f"at most {MAX_VALIDATORS} validators")
        members.sort(key=lambda v: v.pubkey)
        for i, member in enumerate(members):
            if type(member.pubkey) is not bytes or len(member.pubkey) != PUBKEY_LEN:
                raise ValueError("validator public keys are 32 bytes")
            if type(member.power) is not int or member.power < 1:
                raise ValueError("validator power must be a positive integer")
            if i and members[i - 1].pubkey == member.pubkey:
                raise ValueError("duplicate validator public key")
        self.validators: tuple[Validator, ...] = tuple(members)
        self.total_power: int = sum(v.power for v in members)
        if self.total_power > MAX_TOTAL_POWER:
            raise ValueError("total voting power is too large")
        self._power: dict[bytes, int] = {v.pubkey: v.power for v in members}
        self._index: dict[bytes, int] = {v.pubkey: i for i, v in enumerate(members)}
        divisor = 0
        for v in members:
            divisor = gcd(divisor, v.power)
        # Dividing every power by their gcd yields the same schedule with a shorter period.
        self._weights: tuple[int, ...] = tuple(v.power // divisor for v in members)
        self._period: int = sum(self._weights)
        self._checkpoints: list[tuple[int, ...]] = [tuple(0 for _ in members)]
        self._window: tuple[int, list[int]] = (-1, [])

    # --------------------------------------------------------------------- membership
    def __len__(self) -> int:
        return len(self.validators)

    def __contains__(self, pubkey: object) -> bool:
        return pubkey in self._power

    def power_of(self, pubkey: bytes) -> int:
        """Voting power of ``pubkey``; 0 for a non-member."""
        return self._power.get(pubkey, 0)

    def index_of(self, pubkey: bytes) -> int:
        return self._index[pubkey]

    # --------------------------------------------------------------------- thresholds
    def is_quorum(self, power: int) -> bool:
        """More than 2/3 of the total power (2f+1 of 3f+1)."""
        return 3 * power > 2 * self.total_power

    def is_one_third(self, power: int) -> bool:
        """More than 1/3 of the total power (f+1): at least one honest validator."""
        return 3 * power > self.total_power

    # --------------------------------------------------------------------- proposer
    def proposer(self, height: int, round: int) -> bytes:
        """Public key of the proposer for (height, round); identical on every node."""
        if height < 1 or round < 0:
            raise ValueError("height starts at 1 and round at 0")
        step = (height - 1 + round) % self._period
        window, offset = divmod(step, _WINDOW)
        if self._window[0] != window:
            self._window = (window, self._compute_window(window))
        return self.validators[self._window[1][offset]].pubkey

    def _compute_window(self, window: int) -> list[int]:
        while len(self._checkpoints) <= window:
            priorities = list(self._checkpoints[-1])
            for _ in range(_WINDOW):
                self._advance(priorities)
            self._checkpoints.append(tuple(priorities))
        priorities = list(self._checkpoints[window])
        return [self._advance(priorities) for _ in range(_WINDOW)]

    def _advance(self, priorities: list[int]) -> int:
        """One step of the priority algorithm; returns the chosen index."""
        weights = self._weights
        best = 0
        for i in range(len(priorities)):
            priorities[i] += weights[i]
            if priorities[i] > priorities[best]:
                best = i
        priorities[best] -= self._period
        return best
