"""A tiny in-process chain for state tests: genesis, funded keys, one block per call."""

from __future__ import annotations

from typing import Any

from state.errors import Code
from state.genesis import Genesis, make_genesis_doc
from state.keys import PrivateKey
from state.machine import BlockResult, ExecBlock, StateMachine
from state.receipts import ActionResult, Receipt
from state.tx import Deposit, PlaceOrder, Tif, sign_tx

CHAIN_ID = "bookchain-test"
T0 = 1_700_000_000_000
USDC, BTC, ETH = 0, 1, 2
BTC_SPOT, ETH_SPOT, BTC_PERP, ETH_PERP = 0, 1, 2, 3


def key(i: int) -> PrivateKey:
    return PrivateKey(bytes([i]) * 32)


BRIDGE = key(1)


#: The oracle prices a test chain starts with (genesis ``initial_oracle_prices``): BTC
#: $60,000, ETH $3,000. A chain without them has no index until a validator submits one,
#: and then no short sale, borrow or perp position on the asset (state/prices.py).
INITIAL_PRICES = {"BTC": 60_000_000_000, "ETH": 3_000_000_000}


def make_genesis(**overrides: Any) -> Genesis:
    """A test chain's genesis; ``overrides`` replace top-level sections. The validators go
    through ``make_genesis_doc`` so the written oracle quorum is the one for that validator
    set (state/genesis.py ``oracle_quorum``), as a real genesis writer's would be."""
    doc = make_genesis_doc(chain_id=CHAIN_ID, validators=overrides.pop("validators", []),
                           bridge_pubkey=BRIDGE.pubkey, genesis_time_ms=T0, initial_oracle_prices=INITIAL_PRICES)
    doc.update(overrides)
    return Genesis.from_json(doc)


class MemoryStore:
    """The state store's interface over a dict: an in-memory chain still commits every
    block's write set, so each block can check that the records written equal the state
    held in memory (a mutation that misses the write set is what a restarted node would
    not see)."""

    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}
        self._meta: tuple[int, bytes] | None = None

    def meta(self) -> tuple[int, bytes] | None:
        return self._meta

    def items(self) -> list[tuple[bytes, bytes]]:
        return sorted(self.records.items())

    def get(self, key: bytes) -> bytes | None:
        return self.records.get(key)

    def commit(self, writes: list[tuple[bytes, bytes | None]], height: int, app_hash: bytes, *,
               sync: bool = True) -> None:
        for k, v in writes:
            if v is None:
                self.records.pop(k, None)
            else:
                self.records[k] = v
        self._meta = (height, app_hash)

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


class Chain:
    def __init__(self, path: str | None = None, genesis: Genesis | None = None) -> None:
        self.genesis = genesis or make_genesis()
        self.path = path
        if path is None:
            self.sm = StateMachine(self.genesis, MemoryStore())  # type: ignore[arg-type]
        else:
            self.sm = StateMachine.open(self.genesis, path)
        self.time = T0
        self._nonce: dict[bytes, int] = {}
        self.blocks: list[ExecBlock] = []

    @property
    def ex(self) -> Any:
        return self.sm.ex

    def sign(self, k: PrivateKey, action: Any, nonce: int | None = None) -> bytes:
        if nonce is None:
            nonce = max(self._nonce.get(k.pubkey, 0) + 1, self.time)
            self._nonce[k.pubkey] = nonce
        return sign_tx(k, nonce, action, self.genesis.chain_id)

    def block(self, *txs: bytes, offences: tuple[tuple[int, bytes], ...] = ()) -> BlockResult:
        """The next block, one second later; ``offences``: its evidence's (height, validator)."""
        self.time += 1000
        blk = ExecBlock(self.sm.height + 1, self.time, tuple(txs), offences)
        self.blocks.append(blk)
        self.last = self.sm.apply_block(blk)
        keys = [k for k, _ in self.last.write_digests]
        assert keys == sorted(set(keys)), "a block's write set must be in strict key order (the app hash frames it so)"
        self.must_store_equal_memory()
        for a in range(len(self.genesis.assets)):  # custody never owes more than it holds
            assert self.ex.pool_surplus(a) >= 0, (blk.height, a, self.ex.pool_surplus(a))
        return self.last

    def must_store_equal_memory(self) -> None:
        """The committed records are exactly the state in memory (what a restart loads)."""
        if isinstance(self.sm.store, MemoryStore):
            assert self.sm.store.items() == self.ex.snapshot_records(), "a mutation missed the write set"

    def run(self, k: PrivateKey, action: Any) -> Receipt:
        return self.block(self.sign(k, action)).receipts[0]

    def result(self, k: PrivateKey, action: Any) -> ActionResult:
        r = self.run(k, action)
        return r.results[0] if r.results else ActionResult(r.code, r.message)

    def fund(self, k: PrivateKey, asset: int, amount: int) -> None:
        r = self.run(BRIDGE, Deposit(k.address, asset, amount))
        assert r.code == Code.OK, r

    def order(self, k: PrivateKey, market: int, is_buy: bool, price: int, size: int,
              tif: Tif = Tif.GTC, reduce_only: bool = False, cloid: bytes | None = None) -> ActionResult:
        return self.result(k, PlaceOrder(market, is_buy, price, size, tif, reduce_only, cloid))

    def balance(self, k: PrivateKey, asset: int) -> int:
        acct = self.ex.accounts.get(k.address)
        return acct.balance(asset) if acct else 0

    def locked(self, k: PrivateKey, asset: int) -> int:
        """What the account's open spot orders would spend (orders no longer lock funds)."""
        from state import risk

        acct = self.ex.accounts.get(k.address)
        return risk.reserved_of(self.ex, acct, asset) if acct else 0

    def fork(self) -> Chain:
        """An in-memory copy restored from this chain's records (what a restarted node holds)."""
        c = Chain(genesis=self.genesis)
        c.sm.load(self.ex.snapshot_records(), self.sm.height, self.sm.app_hash, where="the forked chain")
        assert isinstance(c.sm.store, MemoryStore)
        c.sm.store.records = dict(self.ex.snapshot_records())
        c.time = self.time
        c._nonce = dict(self._nonce)
        c.blocks = list(self.blocks)
        return c

    def reopen(self) -> None:
        assert self.path is not None
        self.sm.close()
        self.sm = StateMachine.open(self.genesis, self.path)


def total_of(ex: Any, asset: int) -> int:
    """Signed balances of every account (fee and insurance accounts included)."""
    return sum(a.balance(asset) for a in ex.accounts.values())


def perp_entry_total(ex: Any) -> int:
    return sum(p.signed_entry() for a in ex.accounts.values() for p in a.positions.values())


class Calls:
    """How often a patched function ran (``count_calls``)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


def count_calls(monkeypatch: Any, owner: Any, name: str) -> Calls:
    """Replace ``owner.name`` (a module's function) by a wrapper that counts its calls and
    answers as it does: how tests show that a costly path (the plain-Python signature
    rule, a pool write) was or was not taken, without timing anything."""
    calls = Calls()
    real = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.n += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls
