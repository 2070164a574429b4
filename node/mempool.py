"""The mempool: admission checks, a verified-transaction cache, and the proposer's reap.

Signature verification is the chain's hottest cost, so each transaction is decoded and
verified once per node, on admission (or when first seen in a proposal), on a thread pool:
libsodium runs without the GIL, once per batch (node/sigbatch.py), so verification scales
across cores and does not fight the main thread for the GIL. The decoded, verified
object is cached by its raw bytes and handed to ``apply_block``: a block's transactions are
found by the bytes themselves (Python's dict hash of the bytes, ~20x cheaper than the
sha256 a look-up by tx hash needs; the verified object carries that hash already).
Decoding and verification are pure functions, so the cache cannot change any result.

A transaction with ``expires_after`` (state/lifetimes.py) is dropped once a committed
block's time passes it (a heap, so no scan of the pending set) and never reaped after the
last committed block's time passed it: block times only grow, so it could only be TX_EXPIRED.

Clients' submissions (``bound=True``) are admitted within a bound in time and a share per
signer (node/admission.py), both counted in weight (node/txweight.py: one per order action,
so a 64-order batch is 64); peers' gossip meets only the hard count and byte caps, so the
nodes keep one pending set to propose from. The proposer's reap is in arrival order, cut
by weight.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import NamedTuple

from node import sigbatch
from node.admission import CommitRate, Window, claimed_signer
from node.config import MempoolConfig
from node.stategate import StateGate
from node.txweight import claimed_weight, tx_weight
from state.errors import Code, TxError
from state.machine import (
    UNKNOWN_SIGNER,
    StateMachine,
    decode_verified,
    decode_verified_many,
    known_signer,
    must_admit,
    newcomer_signers,
)
from state.tx import MAX_TX_BYTES, SignedTx, tx_hash

VERIFIED_CACHE = 200_000
SEEN_CACHE = 200_000
EXPIRY_SCAN_BLOCKS = 64  # scan the pending txs for expired nonces once per this many blocks


class Admission(NamedTuple):
    """One admission verdict (a tuple: made once per submitted tx, so it must be cheap)."""

    hash: bytes
    code: Code
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == Code.OK


def verify_raw(raw: bytes, chain_id: str) -> SignedTx | TxError:
    """Decode + verify (runs on worker threads); errors are returned, not raised."""
    try:
        return decode_verified(raw, chain_id)
    except TxError as err:
        return err


class Mempool:
    def __init__(self, sm: StateMachine, config: MempoolConfig, clock: Callable[[], float] = time.monotonic,
                 gate: StateGate | None = None) -> None:
        self.sm = sm
        self.gate = gate if gate is not None else StateGate()  # failed: the node stops, admit nothing
        self.config = config
        self.chain_id = sm.genesis.chain_id
        self.pending: OrderedDict[bytes, bytes] = OrderedDict()  # hash -> raw, arrival order
        self.bytes = 0
        self.verified: OrderedDict[bytes, SignedTx] = OrderedDict()  # raw -> tx, LRU of verified txs
        self.committed: OrderedDict[bytes, None] = OrderedDict()  # recently committed hashes
        self._new_for_gossip: list[bytes] = []
        self._blocks_committed = 0
        self._expiring: list[tuple[int, bytes]] = []  # (expires_after, hash) of pending txs, lazy
        self.signer_of: dict[bytes, bytes] = {}  # hash -> signer of each pending tx
        self.weight_of: dict[bytes, int] = {}  # hash -> weight of each pending tx weighing more than 1
        self.weight = 0  # the pending txs' weights summed (what the window bounds)
        self.held: dict[bytes, int] = {}  # signer -> its pending txs' weight (no zero entries)
        self.clock = clock
        self.rate = CommitRate()
        self.window = Window(config.admission_window_ms, config.admission_floor_txs, config.per_signer_min,
                             self.rate, config.reap_window_ms)
        self.refused_busy = 0  # MEMPOOL_BUSY answers given (a counter for /metrics)
        self._newcomers = newcomer_signers(sm.genesis)
        self.refused_unknown = 0  # clients' txs refused UNKNOWN_ACCOUNT before their signature was checked

    def __len__(self) -> int:
        return len(self.pending)

    # ------------------------------------------------------------------ admission
    def window_now(self, bound: bool) -> int:
        """The admission window (weight) for a client's batch (``bound``), read once per
        batch: it moves only when a block commits. 0: no window applies."""
        return self.window.size() if bound and self.config.admission_window_ms else 0

    def precheck(self, raw: bytes, h: bytes | None = None, *, bound: bool = False,
                 window: int | None = None) -> Admission | None:
        """Cheap checks before any cryptography; None means 'go on and verify'.
        ``h`` is ``tx_hash(raw)`` when the caller has it already; ``bound``: a client's
        submission, refused at once when the pending set is beyond any signer's admission;
        ``window``: ``window_now(bound)`` when the caller has it already."""
        if h is None:
            h = tx_hash(raw)
        if len(raw) > MAX_TX_BYTES:
            return Admission(h, Code.TX_TOO_LARGE, f"transaction of {len(raw)} bytes exceeds {MAX_TX_BYTES}")
        pending = self.pending
        if h in pending or h in self.committed:
            return Admission(h, Code.DUPLICATE_TX, "transaction already in the mempool or committed")
        if len(pending) >= self.config.max_txs or self.bytes + len(raw) > self.config.max_bytes:
            return Admission(h, Code.MEMPOOL_FULL, "mempool full, retry later")
        if bound:
            if window is None:
                window = self.window_now(bound)
            if window and self.window.saturated(self.weight, window):
                self.refused_busy += 1
                return Admission(h, Code.MEMPOOL_BUSY, f"{self.weight} actions pending, twice the "
                                                       f"admission window; retry later")
        return None

    def admit_verified(self, raw: bytes, checked: SignedTx | TxError, *, gossip: bool = True,
                       h: bytes | None = None, bound: bool = False, window: int | None = None) -> Admission:
        """Second half of admission, after verification: nonce window, the admission window
        and the signer's share (``bound``: a client's submission; ``window``: as for
        ``precheck``), then insert. A refusal changes nothing (the refused tx is not even
        kept in the verified cache)."""
        if h is None:
            h = checked.hash if isinstance(checked, SignedTx) else tx_hash(raw)
        if isinstance(checked, TxError):
            return Admission(h, checked.code, checked.message)
        if window is None:
            window = self.window_now(bound)
        again = self.precheck(raw, h, bound=bound, window=window)  # state may have moved while we verified
        if again is not None:
            return again
        signer = checked.signer
        held = self.held.get(signer, 0)
        weight = tx_weight(checked)
        if window:
            refusal = self.window.verdict(self.weight, held, len(self.held) + (held == 0), weight, window)
            if refusal is not None:
                self.refused_busy += 1
                return Admission(h, *refusal)
        try:
            # against the block time, which lags wall time: nonces ahead of it within the window only
            must_admit(self.sm.ex, checked, self.sm.ex.time_ms)
        except TxError as err:
            return Admission(h, err.code, err.message)
        self.pending[h] = raw
        self.bytes += len(raw)
        if bound:
            self.window.latency.admitted(h, self.clock())
        self.signer_of[h] = signer
        self.held[signer] = held + weight
        self.weight += weight
        if weight != 1:
            self.weight_of[h] = weight
        if checked.expires_after is not None:
            heapq.heappush(self._expiring, (checked.expires_after, h))
        self.remember(checked)
        if gossip:
            self._new_for_gossip.append(raw)
        return Admission(h, Code.OK)

    def add_sync(self, raw: bytes, *, gossip: bool = True, bound: bool = False) -> Admission:
        h = tx_hash(raw)
        early = self.precheck(raw, h, bound=bound)
        if early is not None:
            return early
        known = self.verified.get(raw)
        return self.admit_verified(raw, known if known is not None else verify_raw(raw, self.chain_id),
                                   gossip=gossip, h=h, bound=bound)

    async def add_many(self, raws: list[bytes], pool: Executor | None, *, gossip: bool = True,
                       bound: bool = False) -> list[Admission]:
        """Admit a batch; verification of the survivors of the cheap checks runs on ``pool``.
        Each tx is hashed once here (the verified object carries the same hash). ``bound``:
        a client's batch, admitted within the window and the signers' shares."""
        import asyncio

        hashes = [tx_hash(r) for r in raws]
        window = self.window_now(bound)
        precheck = self.precheck
        results: list[Admission | None] = [precheck(r, h, bound=bound, window=window)
                                           for r, h in zip(raws, hashes, strict=True)]
        if bound:
            self._refuse_claimed(raws, hashes, results, window)
        todo = [i for i, r in enumerate(results) if r is None and raws[i] not in self.verified]
        if todo:
            loop = asyncio.get_running_loop()
            checked = await loop.run_in_executor(None, verify_batch, [raws[i] for i in todo], self.chain_id, pool)
            fresh = dict(zip(todo, checked, strict=True))
        else:
            fresh = {}
        # the rest reads the exchange state without waiting for a block executing on the
        # execution thread: only what a block replaces whole (state.machine.must_admit)
        self.gate.must_not_have_failed()
        if todo:
            window = self.window_now(bound)  # a block may have committed while we verified
        admit, verified = self.admit_verified, self.verified
        for i, r in enumerate(results):
            if r is None:
                # already verified (e.g. seen in a proposal before its gossip arrived): never twice
                known = fresh[i] if i in fresh else verified.get(raws[i])
                if known is None:  # the cache dropped it while we waited
                    known = verify_raw(raws[i], self.chain_id)
                results[i] = admit(raws[i], known, gossip=gossip, h=hashes[i], bound=bound, window=window)
        return [r for r in results if r is not None]

    def _refuse_claimed(self, raws: list[bytes], hashes: list[bytes], results: list[Admission | None],
                        size: int) -> None:
        """A client's survivors judged on their claimed signer, before any signature is
        checked (node/admission.py), so that refusing costs less than admitting; what this
        refuses would be refused after verification (a forged claim: ``BAD_SIGNATURE``):

        - a signer the chain has never seen: ``UNKNOWN_ACCOUNT`` (``must_admit``). Otherwise
          an unfunded client re-posting one batch of 5,000 strangers' txs made a node verify
          thousands of signatures a second for nothing;
        - the window's verdict (``size``; 0: no window) on the signer's share, for the
          weight the envelope claims (``txweight.claimed_weight``: never above the decoded
          one, so nothing that would fit is refused)."""
        pending, held, window = self.weight, self.held, self.window
        ex, newcomers = self.sm.ex, self._newcomers
        for i, r in enumerate(results):
            if r is not None:
                continue
            signer = claimed_signer(raws[i])
            if signer is None:
                continue
            if signer not in newcomers and not known_signer(ex, signer):
                self.refused_unknown += 1
                results[i] = Admission(hashes[i], Code.UNKNOWN_ACCOUNT, UNKNOWN_SIGNER)
                continue
            if not size:
                continue
            n = held.get(signer, 0)
            refusal = window.verdict(pending, n, len(held) + (n == 0), claimed_weight(raws[i]), size)
            if refusal is not None:
                self.refused_busy += 1
                results[i] = Admission(hashes[i], *refusal)

    def remember(self, tx: SignedTx) -> None:
        self.verified[tx.raw] = tx
        if len(self.verified) > VERIFIED_CACHE:
            self.verified.popitem(last=False)

    def take_gossip(self) -> list[bytes]:
        out, self._new_for_gossip = self._new_for_gossip, []
        return out

    # ------------------------------------------------------------------ proposer / commit
    def reap(self, max_txs: int, max_bytes: int) -> list[bytes]:
        """The next block's txs, in arrival order, cut to ``reap_window_ms`` of the rate in
        weight (the first tx always fits, however heavy: a block must make progress; no cap
        in weight when admission in time is off, only the consensus limits)."""
        cap = self.block_cap()
        out: list[bytes] = []
        size = weight = 0
        now, verified, weight_of = self.sm.ex.time_ms, self.verified, self.weight_of
        for h, raw in self.pending.items():
            tx = verified.get(raw)
            if tx is not None and tx.expires_after is not None and tx.expires_after < now:
                continue  # expired already: dropped at the next commit
            w = weight_of.get(h, 1)
            if len(out) >= max_txs or size + len(raw) > max_bytes or (cap and out and weight + w > cap):
                break
            out.append(raw)
            size += len(raw)
            weight += w
        return out

    def missing_verifications(self, txs: Iterable[bytes]) -> list[bytes]:
        verified = self.verified
        return [raw for raw in txs if raw not in verified]

    def on_committed(self, hashes: Iterable[bytes], raws: Iterable[bytes], block_time_ms: int) -> None:
        """Drop committed transactions (``hashes``: execution already computed them; the
        verified cache is keyed by the ``raws``) and,
        every ``EXPIRY_SCAN_BLOCKS`` blocks, those whose nonce expired.

        The scan is paced by blocks, not by the size of the committed-hash cache: once
        that cache is full its size stays at ``SEEN_CACHE`` (a multiple of 64), which made
        every block scan the whole pending set after ~200,000 committed txs."""
        committed, pending, verified = self.committed, self.pending, self.verified
        hashes, raws = list(hashes), list(raws)
        now = self.clock()
        self.window.latency.on_block(hashes, now)  # before _release forgets the admission times
        # the block's weight, as the rate is measured: a tx pending here weighs what it was
        # admitted at; one this node never held (proposed before its gossip arrived) is in
        # the verified cache (checked when the proposal came), its raw at the same index
        weight = 0
        for i, h in enumerate(hashes):
            committed[h] = None
            old = pending.pop(h, None)
            if old is not None:
                self.bytes -= len(old)
                weight += self._release(h)
            elif i < len(raws) and (tx := verified.get(raws[i])) is not None:
                weight += tx_weight(tx)
            else:
                weight += 1
        self.rate.on_block(weight, now)
        for raw in raws:
            verified.pop(raw, None)
        while len(committed) > SEEN_CACHE:
            committed.popitem(last=False)
        self._blocks_committed += 1
        expiring = self._expiring
        while expiring and expiring[0][0] < block_time_ms:
            _, h = heapq.heappop(expiring)
            old = pending.pop(h, None)
            if old is not None:
                self.bytes -= len(old)
                self._release(h)
                verified.pop(old, None)
        if pending and self._blocks_committed % EXPIRY_SCAN_BLOCKS == 0:
            horizon = block_time_ms - self.sm.genesis.nonce_past_window_ms
            expired = [h for h, raw in pending.items() if (tx := verified.get(raw)) is not None and tx.nonce <= horizon]
            for h in expired:
                self.bytes -= len(pending.pop(h))
                self._release(h)

    def _release(self, h: bytes) -> int:
        """A pending tx left (committed or expired): its signer holds its weight less.
        Returns that weight."""
        self.window.latency.forget(h)  # expired or committed (on_block has read its admission time)
        weight = self.weight_of.pop(h, 1)
        signer = self.signer_of.pop(h, None)
        if signer is None:
            return weight
        self.weight -= weight
        left = self.held[signer] - weight
        if left:
            self.held[signer] = left
        else:
            del self.held[signer]
        return weight

    def block_cap(self) -> int:
        """Most weight the proposer puts in a block now (0: no cap beyond consensus's)."""
        c = self.config
        if not c.admission_window_ms or not c.reap_window_ms:
            return 0
        return max(c.admission_floor_txs // 2, int(self.rate.capacity() * c.reap_window_ms / 1000), 1)

    def window_txs(self) -> int:
        """The admission window now, in weight (0 when admission in time is off)."""
        return self.window.size() if self.config.admission_window_ms else 0


def verify_batch(raws: list[bytes], chain_id: str, pool: Executor | None) -> list[SignedTx | TxError]:
    """Verify ``raws``, fanning out over ``pool``'s threads when the batch is large."""
    if pool is None or len(raws) < 64:
        return _verify_chunk(raws, chain_id)
    workers = getattr(pool, "_max_workers", 2)
    step = max(1, (len(raws) + workers - 1) // workers)
    chunks = [raws[i: i + step] for i in range(0, len(raws), step)]
    futures = [pool.submit(_verify_chunk, c, chain_id) for c in chunks[1:]]
    out = _verify_chunk(chunks[0], chain_id)
    for f in futures:
        out.extend(f.result())
    return out


def _verify_chunk(raws: list[bytes], chain_id: str) -> list[SignedTx | TxError]:
    """Decode the chunk, then check all its signatures in one batch (node/sigbatch.py:
    one GIL release per chunk, not per signature)."""
    return decode_verified_many(raws, chain_id, sigbatch.verify_many)
