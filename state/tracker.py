"""What changed since the last write set: one tracker the mutators themselves feed.

Every record kind has its set here, and the code that changes a record is the code that
marks it: ``Pools`` (state/lending.py) marks an account on every balance change, the
``Account`` setters mark settings, state/funding.py marks positions, and the exchange's
``touch_*`` methods mark orders, nonces, markets, oracle submissions, watch armings and
committed offences (state/offences.py).
``Exchange.collect_writes`` turns exactly these into the block's sorted write set and
clears them. ``tests/state/test_write_tracking.py`` rejects direct writes anywhere else.

``scan`` is a different thing: the accounts whose balances or positions moved since the
liquidation scan last took them (``take_scan``), which the scan must assess (state/watch.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from state.book import Order
    from state.trigbook import Trigger


class WriteTracker:
    __slots__ = ("accounts", "agents", "markets", "nonces", "offences", "oracle", "orders", "pools", "scan", "subs",
                 "triggers", "watch")

    def __init__(self) -> None:
        self.accounts: set[bytes] = set()  # account records
        self.orders: dict[int, Order | None] = {}  # oid -> the order (None: removed)
        self.triggers: dict[int, Trigger | None] = {}  # oid -> the trigger order (None: removed)
        self.nonces: set[bytes] = set()
        self.watch: set[bytes] = set()  # liquidation-watch armings, by account
        self.markets: set[int] = set()
        self.oracle: set[tuple[int, int]] = set()  # (asset, validator) submissions
        self.pools: set[int] = set()  # lending pools, by asset
        self.scan: set[bytes] = set()  # accounts the liquidation scan must assess
        self.agents: set[bytes] = set()  # agent approvals, by agent address
        self.subs: set[bytes] = set()  # sub-accounts, by address
        self.offences: set[tuple[int, bytes]] = set()  # committed offences, by (height, validator)

    def balance_changed(self, address: bytes) -> None:
        """An account's balances moved: its record is written and the scan checks it."""
        self.accounts.add(address)
        self.scan.add(address)

    def take_scan(self) -> set[bytes]:
        """The accounts changed since the last call (the scan's next batch), and reset."""
        out = self.scan
        self.scan = set()
        return out

    def has_writes(self) -> bool:
        return bool(self.accounts or self.orders or self.nonces or self.watch or self.markets
                    or self.oracle or self.pools or self.agents or self.subs or self.triggers or self.offences)

    def clear_writes(self) -> None:
        self.accounts.clear()
        self.orders.clear()
        self.triggers.clear()
        self.nonces.clear()
        self.watch.clear()
        self.markets.clear()
        self.oracle.clear()
        self.pools.clear()
        self.agents.clear()
        self.subs.clear()
        self.offences.clear()
