"""The state machine: ``apply_block(block) -> BlockResult`` and restore from disk.

``apply_block`` is a pure function of the previous committed state and the block: it
decodes each transaction (or takes the decoded, signature-checked object the node cached,
keyed by its raw bytes, when it admitted the tx to its mempool: decoding and verification
are pure, so a cache cannot change the outcome), applies cancels first and everything else in the
proposer's order, and commits the sorted write set with the new height and app hash in
one atomic LevelDB batch.

The per-block sequence, always in this order (block time = ``ExecBlock.time_ms``)::

    begin   0. the block's equivocation offences are recorded, and those that no later block
               may repeat (older than the evidence max age) removed  (state/offences.py)
            1. interest accrual: every pool's indices advance over the time since the
               previous block, at the rate fixed at the end of that block; the reserve
               factor's share goes to the insurance fund          (state/lending.py)
           1b. good-til-time orders past their expiry are cancelled and due dead-man
               switches run, earliest first, at most SWEEP_BUDGET a block (state/lifetimes.py)
            1c. dated futures whose expiry the block time reached: orders cancelled,
               positions closed at the settlement price            (state/futures.py)
    txs     2. cancels first, then everything else in the proposer's order; oracle
               submissions are ordinary transactions; every check in the block sees the
               index and mark prices of the previous block's end
    end     3. oracle aggregation: median of the fresh validator submissions (state/oracle.py)
            4. index prices, the futures' settlement TWAP (state/futures.py), then mark
               prices (basis EMA)                                    (state/prices.py),
               then trigger orders fire, in oid order                 (state/triggers.py)
            5. funding: premium sample; at an interval boundary, the rate and the
               cumulative funding index                               (state/funding.py)
            6. liquidation scan of the dirty set: accounts touched in this block plus
               those whose price, funding or interest triggers fired (state/watch.py,
               state/liquidation.py; a write-off there sweeps the dust to the fund
               first, ``Exchange.sweep_dust``)
            7. interest rates from the new utilization; rounding dust to the insurance fund
    commit  the sorted write set, the app hash

Steps 1-1c together, each action of a transaction, steps 3-6 together, and step 7's dust
credits each end with ``Pools.settle_idle``: the idle credits (auto-lend off) the step made
beyond what its pools could pay a withdrawing supplier are lent (state/lending.py,
"Liquidity"), and the step's transient notes are cleared (none is left at a commit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from state import (
    apphash,
    funding,
    futures,
    lifetimes,
    liquidation,
    nonces,
    offences,
    oracle,
    prices,
    triggers,
)
from state.errors import Code, StateIntegrityError, TxError
from state.exchange import Exchange
from state.genesis import Genesis
from state.handlers import apply_tx
from state.keys import SigItem, address_of, verify_each
from state.merkle import StateTree
from state.receipts import Receipt
from state.store import StateStore
from state.tx import (
    SCHEME_ED25519,
    SCHEME_HL,
    ActAs,
    Batch,
    Cancel,
    CancelAll,
    Deposit,
    OraclePrices,
    SignedTx,
    decode_tx,
    tx_hash,
)


@dataclass(frozen=True, slots=True)
class ExecBlock:
    """What execution needs of a block; consensus wraps it in a header and certificate.

    ``offences``: the (height, validator) of each piece of the block's equivocation evidence,
    in block order (``DuplicateVote.offence``, checked by consensus); the state records them
    (state/offences.py). Every caller that executes a consensus block passes them
    (node/execblock.py ``exec_block``); a block without evidence has none."""

    height: int
    time_ms: int
    txs: tuple[bytes, ...]
    offences: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class BlockResult:
    height: int
    time_ms: int
    app_hash: bytes
    receipts: tuple[Receipt, ...]
    events: tuple[tuple[int, Any], ...]  # (index of the tx in the block, event)
    write_digests: tuple[tuple[bytes, bytes], ...]  # (key, sha256(value)[:8] or b"") for audits


# Final: compiled code reads these from C statics, not from the module's dict per call
_CANCELS: Final = (Cancel, CancelAll)
_BATCH: Final = Batch
_HL_CANCELS: Final = ("cancel", "cancelByCloid")
_OPEN_TO_NEWCOMERS: Final = (Deposit, OraclePrices)  # the bridge and the validators may be new signers


def is_cancel(tx: SignedTx) -> bool:
    """Cancels go first in a block (as on Hyperliquid): a maker can always pull a quote
    (also one a sub-account's, ``act_as``; also Hyperliquid's ``cancel`` and ``cancelByCloid``,
    whatever their vault: state/hltx.py)."""
    a = tx.action
    if tx.scheme == SCHEME_HL:
        return bool(a.type in _HL_CANCELS)
    if isinstance(a, ActAs):
        a = a.action
    if isinstance(a, _CANCELS):
        return True
    return isinstance(a, _BATCH) and all(isinstance(x, _CANCELS) for x in a.actions)


def begin_block(ex: Exchange, time_ms: int) -> None:
    """Step 1: accrue interest over the time since the previous block."""
    dt = max(time_ms - ex.time_ms, 0)
    ex.time_ms = time_ms
    ex.pools.settle_idle()  # the block's steps measure the pools from here (state/lending.py)
    ex.tracker.take_scan()  # the risk scan's dirty set is this block's only (a restart has none)
    fund = None
    for a in range(len(ex.genesis.assets)):
        pool = ex.pools[a]
        moved, reserve = pool.accrue(dt)
        if moved:
            ex.tracker.pools.add(a)
        if reserve:
            fund = fund or ex.account(ex.insurance_account)
            fund.credit(a, reserve)
    lifetimes.begin_block(ex)  # expire good-til-time orders, fire dead-man switches
    futures.expire_due(ex)  # dated futures at their expiry settle before any tx (state/futures.py)
    ex.pools.settle_idle()  # an expiry's idle credits beyond what the pools may pay are lent


def end_block(ex: Exchange) -> None:
    """Steps 3 to 7 (see the module doc)."""
    oracle.aggregate(ex)
    prices.refresh_index_prices(ex)
    futures.accumulate(ex)  # settlement TWAP of dated futures inside their window
    prices.update_marks(ex)
    prices.refresh_leg_prices(ex)
    triggers.run(ex)  # stop / take-profit orders whose reference crossed, by oid (state/triggers.py)
    funding.sample_premiums(ex)
    settled = funding.maybe_settle(ex)
    liquidation.run(ex, settled)
    ex.pools.settle_idle()  # the steps' idle credits beyond what the pools may pay are lent
    ex.sweep_dust()
    # the dust credits are a step too: its transient notes (``Pools.opened``, ``fresh``) are
    # then empty at every commit, as in a node restarted there
    ex.pools.settle_idle()
    for a in range(len(ex.genesis.assets)):
        pool = ex.pools[a]
        rate = pool.borrow_rate_ppm(pool.utilization_ppm())
        if rate != pool.rate_ppm:
            pool.rate_ppm = rate
            ex.tracker.pools.add(a)


def decode_verified(raw: bytes, chain_id: str) -> SignedTx:
    """Decode and check the signature, or raise the rejection code."""
    tx = decode_tx(raw)
    if not tx.verify_signature(chain_id):
        raise _bad_signature()
    return tx


def decode_verified_many(raws: Sequence[bytes], chain_id: str,
                         verify_many: Callable[[Sequence[SigItem]], list[bool]] = verify_each,
                         ) -> list[SignedTx | TxError]:
    """``decode_verified`` for each of ``raws``, rejections returned as values: all are
    decoded first, then every signature is checked in one ``verify_many`` call (a batch
    verifier answers exactly what ``keys.verify`` answers, one signature at a time)."""
    out: list[SignedTx | TxError] = []
    items: list[SigItem] = []
    for raw in raws:
        try:
            tx = decode_tx(raw)
        except TxError as err:
            out.append(err)
            continue
        out.append(tx)
        if tx.scheme == SCHEME_ED25519:  # a Hyperliquid tx's signer was recovered at decode
            items.append(tx.signature_item(chain_id))
    oks = iter(verify_many(items))
    return [c if isinstance(c, TxError) or c.scheme != SCHEME_ED25519 or next(oks) else _bad_signature()
            for c in out]


def _bad_signature() -> TxError:
    return TxError(Code.BAD_SIGNATURE, "signature does not verify for this chain")


class StateMachine:
    """The exchange state plus its store.

    ``sync_commits=False`` leaves most blocks' batches to the OS instead of fsyncing each:
    for a node, whose block store holds every block (synced) before it is applied and whose
    handshake re-applies whatever the state store lacks. An OS crash can only leave the
    state some blocks behind, never torn (a block's batch, with its height and app hash, is
    atomic in LevelDB's log). Every ``SYNC_EVERY``-th block is synced, which makes all the
    earlier ones durable too, and ``durable_height`` says up to where: before the node
    prunes a block above it, it calls ``sync_store``. (A process crash loses nothing either
    way: the OS still has the writes.)"""

    SYNC_EVERY = 100

    def __init__(self, genesis: Genesis, store: StateStore | None, *, sync_commits: bool = True) -> None:
        self.genesis = genesis
        self.store = store
        self.sync_commits = sync_commits
        self.durable_height = 0  # the highest height known to be on disk (0 until a synced commit)
        self.ex = Exchange(genesis)
        self.genesis_hash = genesis.hash()
        self.tree = StateTree()
        self._pending: tuple[list[tuple[bytes, bytes | None]], int, bytes] | None = None
        meta = store.meta() if store is not None else None
        if meta is None:
            self._init_genesis()
        else:
            assert store is not None
            self.load(store.items(), *meta, where=f"the state store at {store.path}")

    def load(self, items: list[tuple[bytes, bytes]], height: int, app_hash: bytes, *, where: str) -> None:
        """Take the state of ``items`` (every record of a committed height) and check that
        they give ``app_hash``: a store or snapshot whose records were altered is refused."""
        self.ex = Exchange(self.genesis)
        self.ex.load_records(items)
        self.ex.height, self.ex.app_hash = height, app_hash
        self.tree = StateTree()
        self.tree.apply(items)
        computed = apphash.app_hash(self.genesis_hash, self.tree.root)
        if computed != app_hash:
            raise StateIntegrityError(
                f"{where} does not match its app hash at height {height}: its records give "
                f"{computed.hex()}, the chain has {app_hash.hex()} (damaged or altered records)")

    @classmethod
    def open(cls, genesis: Genesis, path: str | None, *, sync_commits: bool = True) -> StateMachine:
        return cls(genesis, StateStore(path) if path is not None else None, sync_commits=sync_commits)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    @property
    def height(self) -> int:
        return self.ex.height

    @property
    def app_hash(self) -> bytes:
        return self.ex.app_hash

    @property
    def time_ms(self) -> int:
        return self.ex.time_ms

    def _init_genesis(self) -> None:
        for address, asset, amount in self.genesis.balances:
            acct = self.ex.account(address)
            acct.credit(asset, amount)
            self.ex.pools[asset].custody += amount
            self.ex.touch(acct)
        self.ex.pools.settle_idle()
        writes = self.ex.collect_writes()
        self.ex.app_hash = apphash.app_hash(self.genesis_hash, self.tree.apply(writes))
        if self.store is not None:
            self.store.commit(writes, 0, self.ex.app_hash)

    # ------------------------------------------------------------------ execution
    def apply_block(self, block: ExecBlock, verified: Mapping[bytes, SignedTx] | None = None,
                    *, commit: bool = True) -> BlockResult:
        """Execute ``block``. ``verified`` holds transactions already decoded and
        signature-checked, keyed by their raw bytes (the node's mempool cache): a hit skips
        decoding and verification, a miss does both here. Keyed by the bytes, not the tx
        hash, so a hit costs a dict look-up instead of a sha256 (the tx carries its hash).
        With ``commit=False`` the write set is held until ``commit_pending()``, so the node
        can first persist the block's results: a crash in between leaves the state at the
        previous height and the block is re-applied."""
        if self._pending is not None:
            raise RuntimeError("a block is applied but not committed")
        ex = self.ex
        if block.height != ex.height + 1:
            raise ValueError(f"block {block.height} does not follow height {ex.height}")
        ex.height = block.height
        ex.events = []
        end_events: list[Any] = []
        offences.record_block(ex, block.height, block.offences)
        begin_block(ex, block.time_ms)
        end_events.extend(ex.events)
        chain_id = self.genesis.chain_id
        receipts: list[Receipt | None] = [None] * len(block.txs)
        decoded: list[tuple[int, SignedTx]] = []
        for i, raw in enumerate(block.txs):
            tx = verified.get(raw) if verified is not None else None
            if tx is None:
                try:
                    tx = decode_verified(raw, chain_id)
                except TxError as err:
                    receipts[i] = Receipt(tx_hash(raw), err.code, err.message)
                    continue
            decoded.append((i, tx))
        cancels: list[tuple[int, SignedTx]] = []
        others: list[tuple[int, SignedTx]] = []
        for item in decoded:
            (cancels if is_cancel(item[1]) else others).append(item)
        ordered = cancels + others
        events: list[tuple[int, Any]] = []
        for i, tx in ordered:
            tx_events: list[Any] = []
            ex.events = tx_events
            receipts[i] = apply_tx(ex, tx)
            if tx_events:
                events.extend([(i, e) for e in tx_events])
        ex.events = []
        end_block(ex)
        end_events.extend(ex.events)
        events.extend((-1, e) for e in end_events)  # block-level events carry tx index -1
        ex.events = []
        writes = ex.collect_writes()
        root, digests = self.tree.apply_digested(writes)
        ex.app_hash = apphash.app_hash(self.genesis_hash, root)
        self._pending = (writes, block.height, ex.app_hash)
        if commit:
            self.commit_pending()
        return BlockResult(block.height, block.time_ms, ex.app_hash, tuple(r for r in receipts if r is not None),
                           tuple(events), digests)

    def sync_store(self) -> None:
        """Make every committed block durable now (one fsync of the store's log)."""
        if self.store is not None:
            self.store.sync()
        self.durable_height = self.ex.height

    def state_digest(self) -> bytes:
        """sha256 over every state record: equal digests mean equal states, whatever the
        height (the app hash, by contrast, also commits to history)."""
        h = hashlib.sha256()
        for key, value in self.ex.snapshot_records():
            h.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
        return h.digest()

    def stored_records(self) -> list[tuple[bytes, bytes]]:
        return self.store.items() if self.store is not None else []

    def commit_pending(self) -> None:
        """Write the applied block's write set, height and app hash in one atomic batch
        (synced unless ``sync_commits`` is off)."""
        if self._pending is None:
            raise RuntimeError("no applied block to commit")
        writes, height, app_hash = self._pending
        self._pending = None
        if self.store is not None:
            sync = self.sync_commits or height - self.durable_height >= self.SYNC_EVERY
            self.store.commit(writes, height, app_hash, sync=sync)
            if sync:
                self.durable_height = height

    # ------------------------------------------------------------------ admission
    def check_tx(self, raw: bytes, now_ms: int | None = None) -> SignedTx:
        """Mempool admission: decode, signature, and the nonce window against the last
        committed state (a cheap dry run; the block is the authority)."""
        tx = decode_verified(raw, self.genesis.chain_id)
        must_admit(self.ex, tx, self.ex.time_ms if now_ms is None else now_ms)
        return tx


UNKNOWN_SIGNER: Final = "this key has no account on the chain: deposit to it first"


def known_signer(ex: Exchange, address: bytes) -> bool:
    """Whether the chain has seen ``address`` sign or hold anything (an account, a nonce
    record, an agent approval): only such a signer may send more than ``newcomer_signers``
    may. Membership of three dicts a block replaces whole: safe beside an executing block."""
    return address in ex.accounts or address in ex.nonces or address in ex.agents


def newcomer_signers(genesis: Genesis) -> frozenset[bytes]:
    """The addresses whose first transaction may come before the chain knows them: the
    bridge's (deposits) and the validators' (oracle prices), ``must_admit``'s newcomers."""
    return frozenset([address_of(genesis.bridge_authority), *(address_of(v.pubkey) for v in genesis.validators)])


def must_admit(ex: Exchange, tx: SignedTx, now_ms: int) -> None:
    """The state checks of mempool admission for a decoded, signature-checked ``tx``: its
    nonce is fresh and inside the window around ``now_ms``, and its signer may send it.

    A signer the chain has never seen (no account, no nonce) can only deposit as the bridge
    or submit prices as a validator. Everything else it sends would be rejected in a block
    and, because an included transaction uses its nonce, would still cost a nonce record:
    refused here, such spam never reaches a block (a proposer that includes it anyway gets
    the same rejection codes as before).

    Called on the node's event loop while a block may be executing on another thread
    (node/stategate.py), so it reads only what a block replaces whole and never iterates a
    collection the block changes: a signer's kept nonces (a new array on every record),
    membership of three dicts, the block time."""
    genesis = ex.genesis
    lifetimes.must_not_expired(tx, now_ms)
    nonces.must_accept(ex.nonces.get(tx.signer, []), tx.nonce, now_ms,
                       genesis.nonce_past_window_ms, genesis.nonce_future_window_ms)
    if known_signer(ex, tx.signer):
        return
    if isinstance(tx.action, _OPEN_TO_NEWCOMERS):
        return
    raise TxError(Code.UNKNOWN_ACCOUNT, UNKNOWN_SIGNER)
