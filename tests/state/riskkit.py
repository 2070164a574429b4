"""Helpers for risk tests: a chain whose genesis has one validator that feeds the oracle."""

from __future__ import annotations

from typing import Any

from state import risk
from state.errors import Code
from state.keys import PrivateKey
from state.tx import OraclePrices
from tests.harness import BTC, ETH, Chain, key, make_genesis

V = key(90)  # the oracle validator
USD = 1_000_000  # micro-USDC per dollar
BTC_UNIT = 10**8
PX_60K = 60_000 * USD  # oracle units: micro-USDC per whole BTC


def risk_chain(path: str | None = None, validators: list[PrivateKey] | None = None, **overrides: Any) -> Chain:
    vals = validators or [V]
    genesis = make_genesis(validators=[{"name": f"v{i}", "pubkey": k.pubkey.hex(), "power": 1}
                                       for i, k in enumerate(vals)], **overrides)
    return Chain(path, genesis=genesis)


def set_prices(chain: Chain, btc: int | None = None, eth: int | None = None, by: PrivateKey = V) -> None:
    """Submit the prices and run blocks until the oracle reaches them: a block moves an
    oracle price at most ``risk.oracle.max_move_ppm`` (state/oracle.py), so a larger move
    takes several blocks (``chain.last`` is the block that reached the target). With more
    than one validator the median decides, so only the submission block runs."""
    prices = tuple((a, p) for a, p in ((BTC, btc), (ETH, eth)) if p is not None)
    r = chain.run(by, OraclePrices(prices))
    assert r.code == Code.OK, r
    if len(chain.genesis.validators) == 1:
        for _ in range(100):
            if all(chain.ex.pools[a].oracle_px == p for a, p in prices):
                break
            chain.block()


def mm(chain: Chain, k: PrivateKey) -> risk.Assessment:
    return risk.maintenance(chain.ex, chain.ex.accounts[k.address], detail=True)


def im(chain: Chain, k: PrivateKey) -> risk.Assessment:
    return risk.assess(chain.ex, chain.ex.accounts[k.address], True, orders=True)
