"""The exchange's hot state: books, accounts, nonces, counters, with write tracking.

Everything lives in memory for speed; the store is the record. Mutations say which
records they touched (``touch*``) and ``collect_writes`` turns exactly those into the
block's write set, sorted by key, which both the LevelDB batch and the app hash consume.
"""

from __future__ import annotations

from typing import Any

from state import records
from state.account import Account
from state.book import Book, Order
from state.errors import Code, TxError
from state.genesis import FEE_ACCOUNT, INSURANCE_ACCOUNT, PERP, Genesis, MarketSpec


class Exchange:
    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.markets: tuple[MarketSpec, ...] = genesis.markets
        self.perp_market_ids = frozenset(m.market_id for m in self.markets if m.kind == PERP)
        self.collateral_asset = 0  # the first asset in genesis (USDC) settles perps
        self.fee_account = FEE_ACCOUNT
        self.insurance_account = INSURANCE_ACCOUNT
        self.books: dict[int, Book] = {m.market_id: Book(m.market_id) for m in self.markets}
        self.accounts: dict[bytes, Account] = {}
        self.nonces: dict[bytes, list[int]] = {}
        self.last_price: dict[int, int] = {}
        self.height = 0
        self.time_ms = genesis.genesis_time_ms
        self.app_hash = genesis.hash()
        self.oid_counter = 0
        self.seq_counter = 0
        self.events: list[Any] = []
        self._dirty_accounts: set[bytes] = set()
        self._dirty_orders: dict[int, Order | None] = {}
        self._dirty_nonces: set[bytes] = set()
        self._dirty_markets: set[int] = set()

    # ------------------------------------------------------------------ lookups
    def market(self, market_id: int) -> MarketSpec:
        if market_id >= len(self.markets):
            raise TxError(Code.UNKNOWN_MARKET, f"no market {market_id}")
        return self.markets[market_id]

    def must_asset(self, asset_id: int) -> None:
        if asset_id >= len(self.genesis.assets):
            raise TxError(Code.UNKNOWN_ASSET, f"no asset {asset_id}")

    def account(self, address: bytes) -> Account:
        acct = self.accounts.get(address)
        if acct is None:
            acct = self.accounts[address] = Account(address)
        return acct

    def find_order(self, acct: Account, market_id: int, oid: int | None, cloid: bytes | None) -> Order:
        """An open order of ``acct`` in ``market_id``, by oid or cloid, or UNKNOWN_ORDER."""
        self.market(market_id)
        if oid is None:
            assert cloid is not None
            oid = acct.cloids.get(cloid)
        order = self.books[market_id].orders.get(oid) if oid is not None else None
        if order is None or order.owner != acct.address:
            raise TxError(Code.UNKNOWN_ORDER, "no such open order for this account in this market")
        return order

    # ------------------------------------------------------------------ counters
    def next_order_id(self) -> int:
        self.oid_counter += 1
        return self.oid_counter

    def next_seq(self) -> int:
        self.seq_counter += 1
        return self.seq_counter

    # ------------------------------------------------------------------ write tracking
    def touch(self, acct: Account) -> None:
        self._dirty_accounts.add(acct.address)

    def touch_order(self, order: Order) -> None:
        self._dirty_orders[order.oid] = order

    def touch_order_removed(self, order: Order) -> None:
        self._dirty_orders[order.oid] = None

    def touch_nonces(self, address: bytes) -> None:
        self._dirty_nonces.add(address)

    def touch_market(self, market_id: int) -> None:
        self._dirty_markets.add(market_id)

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def has_pending_writes(self) -> bool:
        return bool(self._dirty_accounts or self._dirty_orders or self._dirty_nonces or self._dirty_markets)

    def collect_writes(self) -> list[tuple[bytes, bytes | None]]:
        """The sorted write set of everything touched since the last call (None deletes)."""
        writes: dict[bytes, bytes | None] = {}
        for addr in self._dirty_accounts:
            acct = self.accounts[addr]
            if acct.is_empty():
                writes[records.account_key(addr)] = None
            else:
                writes[records.account_key(addr)] = records.encode_record(acct.record())
        for oid, order in self._dirty_orders.items():
            if order is None or not order.live:
                writes[records.order_key(oid)] = None
            else:
                writes[records.order_key(oid)] = records.encode_record(order.record())
        for addr in self._dirty_nonces:
            writes[records.nonce_key(addr)] = records.encode_record(self.nonces[addr])
        for m in self._dirty_markets:
            writes[records.market_key(m)] = records.encode_record([self.last_price.get(m, 0)])
        writes[records.COUNTERS_KEY] = records.encode_record([self.oid_counter, self.seq_counter])
        self._dirty_accounts.clear()
        self._dirty_orders.clear()
        self._dirty_nonces.clear()
        self._dirty_markets.clear()
        return sorted(writes.items())

    def snapshot_records(self) -> list[tuple[bytes, bytes]]:
        """Every record of the current state, sorted by key: exactly what the store holds
        after a commit. Used for state digests, audits and snapshots."""
        out: list[tuple[bytes, bytes]] = []
        for addr, acct in self.accounts.items():
            if not acct.is_empty():
                out.append((records.account_key(addr), records.encode_record(acct.record())))
        for book in self.books.values():
            for oid, order in book.orders.items():
                out.append((records.order_key(oid), records.encode_record(order.record())))
        for addr, kept in self.nonces.items():
            out.append((records.nonce_key(addr), records.encode_record(kept)))
        for m, px in self.last_price.items():
            out.append((records.market_key(m), records.encode_record([px])))
        out.append((records.COUNTERS_KEY, records.encode_record([self.oid_counter, self.seq_counter])))
        out.sort()
        return out

    # ------------------------------------------------------------------ restore
    def load_records(self, items: list[tuple[bytes, bytes]]) -> None:
        """Rebuild the hot state from stored records (any order); books by priority seq."""
        orders: list[Order] = []
        for key, value in items:
            kind, ident = records.parse_key(key)
            rec = records.decode_record(value)
            if kind == records.ACCOUNT:
                self.accounts[ident] = Account.from_record(ident, rec)
            elif kind == records.ORDER:
                orders.append(Order.from_record(rec))
            elif kind == records.NONCE:
                self.nonces[ident] = list(rec)
            elif kind == records.MARKET:
                if rec[0]:
                    self.last_price[int.from_bytes(ident, "big")] = rec[0]
            elif kind == records.COUNTERS:
                self.oid_counter, self.seq_counter = rec
        orders.sort(key=lambda o: o.seq)
        for order in orders:
            self.books[order.market].add(order)
            acct = self.account(order.owner)
            acct.open_orders[order.oid] = order.market
            if order.cloid is not None:
                acct.cloids[order.cloid] = order.oid
            if order.market in self.perp_market_ids:
                acct.order_margin += order.locked
