"""Interest paid and earned, itemized per account and asset: hourly history entries (issue 24).

Interest on lending and borrowing accrues through two pool indexes (state/lending.py): an
account holds signed pool shares, and its balance of the asset is ``idle + value(shares,
index)``, so every supplier's and borrower's balance moves at once and no per-account event
exists. The node, not the state, itemizes it, the way Hyperliquid shows funding: once an
hour, one ``interest`` entry per (account, asset) in the account history (node/history.py),
``["interest", account, asset, amount, rate_ppm]``: ``amount`` signed in the asset's
smallest units (earned > 0, paid < 0), ``rate_ppm`` the pool's APR at the entry (the supply
rate for a supplier, the borrow rate for a borrower).

Exactness. With ``value(s, I) = floor(s * I / 1e18)`` for supply shares and
``-ceil(-s * I / 1e18)`` for debt shares (exactly ``Pools.real``), the interest of a period in
which an account held ``s`` shares is ``value(s, I_end) - value(s, I_start)``. Periods end at
every hour boundary and whenever the account's shares change; what a block's own flows did
(a fill, a deposit, a borrow: shares from ``s_old`` to ``s_new``) is
``value(s_new, I) - value(s_old, I)`` at that block's index. So for every account the balance
moved by exactly the sum of its interest entries plus that of its own flows, with no rounding
remainder: the sums telescope. The index of a block is read after it, which is the index its
transactions saw (interest accrues first in a block, state/machine.py), except after a
last-resort write-off in the same block (state/liquidation.py ``socialize`` lowers the supply
index after the transactions); that loss then counts as interest of the account's old shares.
Interest of a period that ended with a share change waits (``pending``) for the hour's entry.

State the node keeps (in the block store, written in each block's ``save_results`` batch, so
it never runs ahead of the indexes a restart resumes from):
``_HELD + address(20) + asset(2) -> [shares, start index, pending]`` per (account, asset) with
shares or pending interest, and ``_HOUR -> hour`` (``time_ms // 3_600_000`` of the last
entries). It is seeded from the committed state the first time a node indexes a block (at
genesis, or after a state sync), and loaded whole at start. ``_AT + height(8) -> [[address,
asset], ...]`` lists an hour's entries so pruning the block removes them.

Cost (bench: ``tests/node/test_interest_history.py::test_cost_20k_accounts`` prints it):
per block, O(accounts whose record the block wrote) dict operations (the accounts are the
``a`` keys of the block's write set); once an hour, O(accounts with shares). On a 20,000
account chain (every account a USDC supplier, 2,000 of them also BTC borrowers), measured on
the 2-core development machine: ~115 ms once an hour to itemize it (22,000 entries and the
22,000 record updates, built for the block's batch), ~0.35 ms for a block that touched 100
accounts (its 100 record updates).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgpack

from node.history import ADDRESS_LEN, hist_key
from state.muldiv import mul_one, mul_one_ceil
from state.records import ACCOUNT

if TYPE_CHECKING:
    from state.exchange import Exchange

HOUR_MS = 3_600_000
_HELD = b"i"
_AT = b"j"
_HOUR = b"\xffinterest_hour"
# history seq of an interest entry: above any block's event index, one per asset
SEQ_BASE = 0xFFFF0000
_ACCOUNT_KEY_LEN = len(ACCOUNT) + ADDRESS_LEN


def held_key(address: bytes, asset: int) -> bytes:
    return _HELD + address + struct.pack(">H", asset)


def at_key(height: int) -> bytes:
    return _AT + struct.pack(">Q", height)


def value(shares: int, index: int) -> int:
    """The balance ``shares`` are worth at ``index``, rounded as state/lending.py does."""
    if shares > 0:
        return mul_one(shares, index)
    if shares < 0:
        return -mul_one_ceil(-shares, index)
    return 0


class Held:
    """One (account, asset): shares held since ``start`` (the index then), and the interest
    of earlier periods of this hour not yet itemized."""

    __slots__ = ("pending", "shares", "start")

    def __init__(self, shares: int, start: int, pending: int = 0) -> None:
        self.shares = shares
        self.start = start
        self.pending = pending

    def record(self) -> bytes:
        packed: bytes = msgpack.packb([self.shares, self.start, self.pending], use_bin_type=True)
        return packed


def _index(ex: Exchange, asset: int, shares: int) -> int:
    pool = ex.pools[asset]
    return pool.supply_index if shares > 0 else pool.borrow_index


class InterestBook:
    """The node's itemizer (see the module doc). ``db`` is the block store's LevelDB (read
    once, at the first block after a start)."""

    __slots__ = ("_db", "by_account", "held", "hour", "loaded", "unsaved")

    def __init__(self, db: Any) -> None:
        self._db = db
        self.held: dict[tuple[bytes, int], Held] = {}
        self.by_account: dict[bytes, set[int]] = {}  # address -> the assets in ``held``
        self.hour: int | None = None
        self.loaded = False
        self.unsaved = False  # seeded from the state: the next block's puts write it all

    def _load(self) -> None:
        raw = self._db.get(_HOUR) if self._db is not None else None
        if raw is not None:
            self.hour = msgpack.unpackb(raw)
            for key, val in self._db.iterator(prefix=_HELD):
                if not val:  # nothing held any more (records are never deleted, only emptied)
                    continue
                shares, start, pending = msgpack.unpackb(val)
                address, asset = key[1:1 + ADDRESS_LEN], struct.unpack(">H", key[1 + ADDRESS_LEN:])[0]
                self._hold(address, asset, Held(shares, start, pending))
        self.loaded = True

    def before_block(self, ex: Exchange) -> None:
        """Called with the committed state the next indexed block starts from: the first
        time ever (no hour stored), every account's shares start here."""
        if not self.loaded:
            self._load()
        if self.hour is None:
            for address in sorted(ex.accounts):
                for asset, shares in sorted(ex.accounts[address].scaled.items()):
                    if shares:
                        self._hold(address, asset, Held(shares, _index(ex, asset, shares)))
            self.hour = ex.time_ms // HOUR_MS
            self.unsaved = True

    def block(self, ex: Exchange, height: int, time_ms: int,
              written: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """After block ``height`` (``ex`` is the state after it, ``written`` its write set's
        (key, digest) pairs): close the periods of the accounts whose shares changed and, at
        the first block of a new hour, itemize every held (account, asset). The puts."""
        if self.hour is None:
            raise RuntimeError("InterestBook.before_block must see the state the block starts from")
        held = self.held
        dirty: set[tuple[bytes, int]] = set()
        accounts = ex.accounts
        for key, _ in written:
            if len(key) != _ACCOUNT_KEY_LEN or not key.startswith(ACCOUNT):
                continue
            address = key[len(ACCOUNT):]
            acct = accounts.get(address)
            now = acct.scaled if acct is not None else {}
            assets = set(now)
            assets.update(self.by_account.get(address, ()))
            for asset in sorted(assets):
                new = now.get(asset, 0)
                h = held.get((address, asset))
                if h is not None and h.shares == new:
                    continue
                if h is None:
                    h = self._hold(address, asset, Held(0, 0))
                if h.shares:
                    h.pending += value(h.shares, _index(ex, asset, h.shares)) - value(h.shares, h.start)
                h.shares = new
                h.start = _index(ex, asset, new) if new else 0
                dirty.add((address, asset))
        puts: list[tuple[bytes, bytes]] = []
        hour = time_ms // HOUR_MS
        assert self.hour is not None
        if self.unsaved:
            self.unsaved = False
            dirty.update(held)
            puts.append((_HOUR, msgpack.packb(self.hour)))
        if hour > self.hour:
            puts += self._itemize(ex, height, time_ms)
            self.hour = hour
            puts.append((_HOUR, msgpack.packb(hour)))
        else:
            for k in sorted(dirty):
                h = held[k]
                if h.shares or h.pending:
                    puts.append((held_key(*k), h.record()))
                else:
                    self._forget(k)
                    puts.append((held_key(*k), b""))
        return puts

    def _hold(self, address: bytes, asset: int, h: Held) -> Held:
        self.held[(address, asset)] = h
        self.by_account.setdefault(address, set()).add(asset)
        return h

    def _forget(self, k: tuple[bytes, int]) -> None:
        del self.held[k]
        assets = self.by_account[k[0]]
        assets.discard(k[1])
        if not assets:
            del self.by_account[k[0]]

    def _itemize(self, ex: Exchange, height: int, time_ms: int) -> list[tuple[bytes, bytes]]:
        """The hour's entries: every held (account, asset), its pending interest plus that
        of its current period, which starts anew here."""
        pack = msgpack.Packer(use_bin_type=True).pack
        head = b"\x92" + pack(time_ms)
        pools = ex.pools
        indexes: dict[tuple[int, bool], int] = {}
        rates: dict[tuple[int, bool], int] = {}
        puts: list[tuple[bytes, bytes]] = []
        listed: list[list[Any]] = []
        gone = []
        for (address, asset), h in sorted(self.held.items()):
            amount = h.pending
            if h.shares:
                idx = indexes.get((asset, h.shares > 0))
                if idx is None:
                    idx = indexes[(asset, h.shares > 0)] = _index(ex, asset, h.shares)
                amount += value(h.shares, idx) - value(h.shares, h.start)
                h.start = idx
            h.pending = 0
            if amount:
                rate = rates.get((asset, h.shares > 0))
                if rate is None:
                    pool = pools[asset]
                    rate = rates[(asset, h.shares > 0)] = pool.supply_rate_ppm() if h.shares > 0 else pool.rate_ppm
                event = ["interest", address, asset, amount, rate]
                puts.append((hist_key(address, height, SEQ_BASE + asset), head + pack(event)))
                listed.append([address, asset])
            if h.shares:
                puts.append((held_key(address, asset), h.record()))
            else:
                gone.append((address, asset))
        for k in gone:
            self._forget(k)
            puts.append((held_key(*k), b""))  # an empty record: nothing held (see ``_load``)
        if listed:
            puts.append((at_key(height), pack(listed)))
        return puts


def prune_keys(db: Any, height: int) -> list[bytes]:
    """The interest entries written at ``height`` (and their list), for pruning."""
    raw = db.get(at_key(height))
    if raw is None:
        return []
    return [hist_key(bytes(a), height, SEQ_BASE + asset) for a, asset in msgpack.unpackb(raw)] + [at_key(height)]
