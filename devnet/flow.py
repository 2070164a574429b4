"""A deterministic order flow for load tests, signed before the clock starts.

Why pre-sign: signing costs tens of microseconds per tx in Python; doing it inside the
timed phase would measure the load generator, not the chain. Why deterministic: the same
seed gives the same transactions (up to the nonce base, which also salts the cloids), so two runs load the chain with
the same mix and a regression shows up as a number, not as noise in the flow.

The mix, per trader: mostly resting GTC quotes 1-50 steps either side of a fixed mid,
some IOC orders that cross the spread (fills), and cancels of the trader's own earlier
quotes by client order id (so no oid round trip is needed), oldest first. A trader never keeps more
than ``max_open`` quotes tracked: past that it cancels its oldest, which keeps the
accounts under the chain's open-order limit however long the run.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from state.genesis import Genesis, MarketSpec
from state.keys import PrivateKey
from state.tx import Cancel, PlaceOrder, Tif, sign_tx

# human mid prices by base symbol; markets whose base is not listed get no flow
DEFAULT_MIDS = {"BTC": 60_000, "ETH": 3_000}


@dataclass(frozen=True, slots=True)
class FlowMix:
    maker: float = 0.65  # resting GTC quotes
    taker: float = 0.20  # crossing IOC orders
    # the rest: cancels of own quotes
    max_open: int = 200
    levels: int = 50  # quotes sit 1..levels steps from the mid
    step_ticks: int = 1


@dataclass(frozen=True, slots=True)
class SignedFlow:
    txs: tuple[bytes, ...]
    hashes: tuple[bytes, ...]  # sha256 of each tx (32 bytes), as /commits and receipts name them
    kinds: tuple[str, ...]  # "maker" | "taker" | "cancel", for reporting the mix
    # index (into the ``traders`` list given to ``generate``) of each tx's signer: the load
    # generator sends all of one trader's txs to one node, as a real client would
    traders: tuple[int, ...]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k in self.kinds:
            out[k] = out.get(k, 0) + 1
        return out


def _mid_ticks(g: Genesis, m: MarketSpec, mids: dict[str, int]) -> int | None:
    base = g.assets[m.base].symbol
    if base not in mids:
        return None
    quote_decimals = g.assets[m.quote].decimals
    return int(mids[base] * 10**quote_decimals) // m.tick_size


def _min_lots(m: MarketSpec, price_ticks: int) -> int:
    """Smallest size whose notional clears ``min_notional`` (ceil division)."""
    per_lot = max(1, price_ticks * m.tick_value)
    return max(1, -(-m.min_notional // per_lot))


class FlowGen:
    """The flow as a stream: each ``take(n)`` continues where the last one stopped (open
    quotes, nonces, the rng), so a long run can sign as it goes (the chaos load signs each
    batch at its tick: pre-signing half an hour of load does not fit in memory) with the
    same mix and cancels of quotes from earlier batches."""

    def __init__(self, genesis: Genesis, traders: list[PrivateKey], *, seed: int = 1, nonce_base_ms: int,
                 mix: FlowMix = FlowMix(), mids: dict[str, int] | None = None) -> None:
        if not traders:
            raise ValueError("the load needs at least one trader account")
        self.genesis, self.traders, self.seed, self.mix = genesis, traders, seed, mix
        self.nonce_base_ms = nonce_base_ms
        self.rng = random.Random(seed)
        mids = DEFAULT_MIDS if mids is None else mids
        # dated futures are left out: past their expiry every order on them is refused
        self.markets = [(m, mt) for m in genesis.markets
                        if not m.expiry_ms and (mt := _mid_ticks(genesis, m, mids)) is not None]
        if not self.markets:
            raise ValueError("no market has a mid price for the load flow")
        self.open_quotes: list[deque[tuple[int, bytes]]] = [deque() for _ in traders]
        self.next_nonce = [nonce_base_ms] * len(traders)
        self.i = 0  # txs generated so far (the round-robin position and the cloid salt)

    def take(self, count: int, progress: Any = None) -> SignedFlow:
        """The next ``count`` signed transactions, round-robin over the traders."""
        rng, mix, markets = self.rng, self.mix, self.markets
        txs: list[bytes] = []
        hashes: list[bytes] = []
        kinds: list[str] = []
        signers: list[int] = []
        for n in range(count):
            i = self.i
            self.i += 1
            t = i % len(self.traders)
            key = self.traders[t]
            quotes = self.open_quotes[t]
            r = rng.random()
            action: Any
            if len(quotes) >= mix.max_open or (r >= mix.maker + mix.taker and quotes):
                # the oldest quote: a cancel of a quote in the same block would run before it
                # (cancels go first) and fail, which measures the flow, not the chain
                market_id, cloid = quotes.popleft()
                action, kind = Cancel(market_id, None, cloid), "cancel"
            else:
                m, mid = markets[rng.randrange(len(markets))]
                is_buy = rng.random() < 0.5
                if r < mix.maker or r >= mix.maker + mix.taker:
                    offset = rng.randint(1, mix.levels) * mix.step_ticks
                    price = mid - offset if is_buy else mid + offset
                    # the nonce base keeps cloids unique across runs (quotes of an earlier run may rest)
                    cloid = hashlib.sha256(f"load/{self.seed}/{self.nonce_base_ms}/{i}".encode()).digest()[:16]
                    lots = _min_lots(m, price) * rng.randint(1, 5)
                    action, kind = PlaceOrder(m.market_id, is_buy, price, lots, Tif.GTC, False, cloid), "maker"
                    quotes.append((m.market_id, cloid))
                else:
                    through = (mix.levels + 10) * mix.step_ticks
                    price = mid + through if is_buy else max(1, mid - through)
                    lots = _min_lots(m, price) * rng.randint(1, 3)
                    action, kind = PlaceOrder(m.market_id, is_buy, price, lots, Tif.IOC, False, None), "taker"
            raw = sign_tx(key, self.next_nonce[t], action, self.genesis.chain_id)
            self.next_nonce[t] += 1
            txs.append(raw)
            hashes.append(hashlib.sha256(raw).digest())
            kinds.append(kind)
            signers.append(t)
            if progress is not None and n % 1000 == 999:
                progress(n + 1)
        if progress is not None:
            progress(count)
        return SignedFlow(tuple(txs), tuple(hashes), tuple(kinds), tuple(signers))


def generate(genesis: Genesis, traders: list[PrivateKey], count: int, *, seed: int = 1,
             nonce_base_ms: int, mix: FlowMix = FlowMix(), mids: dict[str, int] | None = None,
             progress: Any = None) -> SignedFlow:
    """``count`` signed transactions spread round-robin over ``traders``."""
    return FlowGen(genesis, traders, seed=seed, nonce_base_ms=nonce_base_ms, mix=mix, mids=mids).take(count, progress)
