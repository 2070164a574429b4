"""Admission sized in time and by cost: how much work a client may still add to the mempool.

What is counted is *weight* (node/txweight.py): one per order action a transaction carries
(a 64-order ``Batch`` weighs 64, a single order or a transfer 1), never one per
transaction. Counted in transactions, a flood of 64-order batches cost what a flood of
single orders costs while it put 64 times the work in every block (an audit: 100 funded
accounts sending 64-order batches whose orders all failed refused 36% of an honest
client's txs and put its p99 submit-to-commit at 3.4 s). Every bound below is in weight:
the commit rate is measured in weight per second, the window and the signers' shares are
weight, and the proposer cuts its blocks by weight.

Why time, not a count: a count cap sized for a fast machine queues seconds of backlog on a
slow one, and every admitted transaction then waits behind it (a devnet offered 6,000/s
against a capacity of ~5,000/s had a 50,000-tx mempool and a 16 s p99). The node measures
how much weight it commits per second (``CommitRate``) and admits from clients only
what it expects to commit within ``admission_window_ms``: a transaction admitted behind
``pending`` weight commits after it and after its own block (at most ``reap_window_ms``
of the rate, see below), so the pending set may hold ``rate x (admission_window_ms -
reap_window_ms)`` of weight (the *window*); beyond it a submission is refused at once with
``MEMPOOL_BUSY``, which a client retries. The count cap (``max_txs``) stays as a hard
ceiling whatever the rate says.

Why a floor: the rate is what the chain committed, not what it could commit; an idle node
measures ~0/s, and must still take a burst. The window is never below ``floor`` (weight).

Fairness per signer (Hyperliquid limits actions per address): a signer may hold at most
``max(per_signer_min, window // active_signers)`` pending weight (its *share*), so one
account flooding the node is refused while the others still get in; and once the pending
set fills the window, a signer whose transaction still fits its fair share (``window //
active_signers``) is admitted anyway, so a flooder that filled the window alone cannot
lock a newcomer out until its backlog drains. A transaction must fit its signer's bound:
the held weight plus its own, or ``n`` flooders each a batch past their share would
overshoot the window by ``n`` batches. One exception: a signer holding nothing may add
one transaction past its share, or a transaction heavier than a thin share could never
enter. The window itself only has to have room left (the pending weight below it), not
room for the whole transaction: a batch must not wait for 64 free units while single
orders take each unit as it frees, and a batch heavier than a small window must still
enter an idle node; so the pending set passes the window by less than one transaction
(at most 256). Those admissions are bounded: the shares of all signers sum to the window,
so the overshoot is at most that transaction and what signers held beyond shares that
shrank as others arrived (and never past ``2 x window``, checked before any signature is
verified).

Refusing must cost less than admitting, or a flood of refusals eats the capacity the window
is sized by: a native transaction names its public key at a fixed place of its envelope,
and a ``Batch`` its action count in the header of its list (``txweight.claimed_weight``),
so the verdict is first taken on that claimed signer and weight, before the signature is
verified (a forged claim cannot make a refusal wrong: it only refuses when the named
signer already holds its share, and its own transactions would be refused as well; the
claimed weight is never above the decoded one). What survives is verified and judged
again on the verified signer and weight. The proposer cuts its blocks to
``reap_window_ms`` of the rate: a transaction waits for the block in flight and then its
own, so blocks of seconds would put seconds on every admitted transaction's latency.

Why a feedback on latency too: the rate says what the chain committed lately, not what it
will commit in the next second. When the machine slows (another process takes a core, a
block is slow), a window sized by the recent peak admits txs that then wait longer than
the bound. So the node also measures what it promised: the time each of its clients'
transactions took from admission to commit here (``Latency``). A block whose admitted txs
waited longer than ``admission_window_ms`` shrinks the window by a quarter; blocks within
80% of it let it grow back by a twentieth per 100 ms since the last block measured (AIMD,
as TCP sizes its congestion window), never past what the rate gives. The growth is paced
by time, not blocks: heights are paced to at most 10 a second, and a chain making fewer
blocks (a light load, or the stalls of a failing validator) would otherwise take seconds
to reopen a window a stall had shrunk, refusing meanwhile what it could commit. The scale
applies to the floor as well: on a machine that commits 2,000 actions a second, a 2,000
floor alone is a second of queue. Transactions that never commit here (gossip lost on its
way to the proposers) do not count: only committed ones measure the queue.

This is node policy, not consensus: it decides what enters this node's mempool from its
clients (gossip from peers only meets the hard ceiling, so every node holds the same
pending set to propose from), never what a block may contain.
"""

from __future__ import annotations

import math

from state.errors import Code
from state.keys import PUBKEY_LEN, address_of

#: Time constant of the commit-rate average (s): a few blocks at saturation, so the window
#: follows a slowing chain within a couple of seconds without jumping at one odd block.
RATE_TAU_S = 2.0
#: How long a rate the chain has shown holds (the decay's time constant, s). The window and
#: the block cut are sized by this recent peak, not by the average alone: the rate the
#: chain commits depends on how many transactions it is given, so a bound sized by the
#: average alone ratchets down after a slow block (a smaller window, smaller blocks, whose
#: fixed costs weigh more, a lower rate, a smaller window again). Measured: a 60 s run at
#: 5,000/s offered stayed at 2,900 tx/s committed, 42% refused, where other runs did 4,100.
PEAK_TAU_S = 30.0


class CommitRate:
    """A time-weighted EWMA of committed weight per second (node/txweight.py).

    Each block contributes ``weight / dt`` (``dt``: wall time since the previous commit) with
    weight ``1 - exp(-dt / tau)``: a burst of blocks a few ms apart moves the estimate by
    as little as those few ms deserve, a long gap by almost all of it."""

    __slots__ = ("_last", "peak", "peak_tau_s", "per_s", "tau_s")

    def __init__(self, tau_s: float = RATE_TAU_S, peak_tau_s: float = PEAK_TAU_S) -> None:
        self.tau_s = tau_s
        self.peak_tau_s = peak_tau_s
        self.per_s = 0.0
        self.peak = 0.0  # the highest average lately, decaying with ``peak_tau_s``
        self._last: float | None = None

    def capacity(self) -> float:
        """What the chain has shown it commits per second lately (the bounds' measure)."""
        return max(self.per_s, self.peak)

    def on_block(self, weight: int, now: float) -> None:
        """A committed block of ``weight`` (its transactions' weights summed)."""
        last, self._last = self._last, now
        if last is None:
            return  # the first commit seen: no interval to divide by yet
        dt = now - last
        if dt <= 0:
            return
        alpha = 1.0 - math.exp(-dt / self.tau_s)
        self.per_s += alpha * (weight / dt - self.per_s)
        self.peak = max(self.per_s, self.peak * math.exp(-dt / self.peak_tau_s))


#: The window's scale after a block whose admitted txs waited too long, and the step back up.
SHRINK = 0.75
GROW_PER_S = 0.5  # a twentieth per 100 ms of calm
MIN_SCALE = 0.1
CALM = 0.8  # a block's slowest admitted tx within this share of the bound lets the window grow


class Latency:
    """Admission-to-commit time of this node's clients' transactions, fed back into the
    window as a scale in [MIN_SCALE, 1] (see the module's docstring)."""

    __slots__ = ("_measured_at", "admitted_at", "bound_s", "scale")

    def __init__(self, bound_ms: int) -> None:
        self.bound_s = bound_ms / 1000
        self.scale = 1.0
        self.admitted_at: dict[bytes, float] = {}  # hash -> when a client's tx was admitted
        self._measured_at: float | None = None  # the last block holding any of them

    def admitted(self, h: bytes, now: float) -> None:
        self.admitted_at[h] = now

    def forget(self, h: bytes) -> None:
        """The tx left without a commit here (expired): it measures nothing."""
        self.admitted_at.pop(h, None)

    def on_block(self, hashes: list[bytes], now: float) -> None:
        """A committed block: the slowest of its txs admitted here sets the scale."""
        pop = self.admitted_at.pop
        worst = 0.0
        for h in hashes:
            t = pop(h, None)
            if t is not None and now - t > worst:
                worst = now - t
        if worst == 0.0:
            return  # none of ours: nothing measured
        since, self._measured_at = self._measured_at, now
        if worst > self.bound_s:
            self.scale = max(MIN_SCALE, self.scale * SHRINK)
        elif worst < CALM * self.bound_s and since is not None:
            self.scale = min(1.0, self.scale + GROW_PER_S * max(0.0, now - since))


class Window:
    """The admission bound and the per-signer shares (weight), from the measured rate (its
    recent peak) scaled by the measured latency."""

    __slots__ = ("block_ms", "floor", "latency", "per_signer_min", "rate", "window_ms")

    def __init__(self, window_ms: int, floor: int, per_signer_min: int, rate: CommitRate, block_ms: int = 0) -> None:
        self.window_ms = window_ms
        self.block_ms = block_ms  # a tx's own block: the part of the bound not spent waiting
        self.floor = floor
        self.per_signer_min = per_signer_min
        self.rate = rate
        self.latency = Latency(window_ms)

    def size(self) -> int:
        """How much pending weight the mempool may hold from clients right now."""
        wait_s = max(0, self.window_ms - self.block_ms) / 1000
        # the scale applies to the floor too: on a slow machine the floor alone is seconds of queue
        return max(1, int(max(self.floor, self.rate.capacity() * wait_s) * self.latency.scale))

    def verdict(self, pending: int, held: int, active: int, weight: int = 1,
                window: int | None = None) -> tuple[Code, str] | None:
        """None to admit a tx of ``weight`` whose signer holds ``held`` of ``pending``
        weight, ``active`` signers holding any (this one counted); else the refusal.
        ``window``: ``size()`` when the caller has it already (a batch reads it once, not
        once per tx). A refusal for ``weight`` is one for any heavier tx too, so a verdict
        on a lower bound of the weight (the claimed one) never refuses what would fit."""
        if window is None:
            window = self.size()
        fair = window // max(1, active)
        share = max(self.per_signer_min, fair)
        after = held + weight
        if after > share and held:
            return Code.MEMPOOL_BUSY, (f"signer holds {held} pending actions, and {weight} more would pass its "
                                       f"share of the {window}-action admission window ({share}); retry later")
        if pending >= window and after > fair:
            return Code.MEMPOOL_BUSY, (f"{pending} actions pending, more than this node commits within "
                                       f"{self.window_ms} ms; retry later")
        return None

    def saturated(self, pending: int, window: int | None = None) -> bool:
        """Beyond any signer's admission: refuse before paying for the signature."""
        return pending >= 2 * (self.size() if window is None else window)


# A native envelope: fixarray(4 or 5), then the public key as msgpack bin8 of 32 bytes
# (state/tx.py sign_tx). Hyperliquid-signed txs name no key: their signer is recovered.
_NATIVE_HEADS = (bytes([0x94, 0xC4, PUBKEY_LEN]), bytes([0x95, 0xC4, PUBKEY_LEN]))
_CLAIMED: dict[bytes, bytes] = {}  # pubkey -> address, cleared when full
_CLAIMED_MAX = 100_000


def claimed_signer(raw: bytes) -> bytes | None:
    """The address a native tx says signed it, read off the envelope without decoding it
    or checking its signature (None for any other shape: it is judged after verification)."""
    if len(raw) <= 3 + PUBKEY_LEN or raw[:3] not in _NATIVE_HEADS:
        return None
    pubkey = raw[3:3 + PUBKEY_LEN]
    address = _CLAIMED.get(pubkey)
    if address is None:
        if len(_CLAIMED) >= _CLAIMED_MAX:
            _CLAIMED.clear()
        address = _CLAIMED[pubkey] = address_of(pubkey)
    return address
