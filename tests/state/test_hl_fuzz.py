"""Any Hyperliquid action a client can sign, however malformed its fields, is answered by a
receipt: ``apply_block`` never raises on a transaction the decoder accepts, a rejected action
changes nothing but the signer's nonce record, and the same blocks give the same app hash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state import hltx
from state.eip712 import EthKey
from state.errors import Code, TxError
from state.tx import Deposit, decode_tx
from tests.harness import USDC, Chain, key

TRADER = EthKey(bytes([5]) * 32)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.text(max_size=12),
                    st.sampled_from(["0", "1", "59000", "0.01", "3000.5", "Gtc", "Ioc", "Alo", "tp", "sl", "na",
                                     "normalTpsl", "positionTpsl", "0x" + "ab" * 16, "0x" + "cd" * 20]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                      max_leaves=12)


def _wire() -> Any:
    keys = st.sampled_from(["a", "b", "p", "s", "r", "t", "c"])
    good = st.fixed_dictionaries({"a": st.sampled_from([0, 1, 2, 10_000, 10_001, 99]), "b": st.booleans(),
                                  "p": st.sampled_from(["59000", "3000.5", "0", "1e3", "59000.55"]),
                                  "s": st.sampled_from(["0.01", "1", "0", "0.00001"]), "r": st.booleans(),
                                  "t": st.one_of(st.just({"limit": {"tif": "Gtc"}}), st.just({"limit": {"tif": "Ioc"}}),
                                                 st.fixed_dictionaries({"trigger": st.fixed_dictionaries(
                                                     {"isMarket": st.booleans(), "triggerPx": st.just("58000"),
                                                      "tpsl": st.sampled_from(["tp", "sl", 1])})}),
                                                 values)})
    return st.one_of(good, st.dictionaries(keys, values, max_size=7))


actions = st.one_of(
    st.fixed_dictionaries({"type": st.just("order"), "orders": st.lists(_wire(), max_size=3),
                           "grouping": st.sampled_from(["na", "normalTpsl", "positionTpsl", "x"])}),
    st.fixed_dictionaries({"type": st.sampled_from(sorted(hltx.L1_TYPES))},
                          optional={"cancels": values, "oid": values, "order": _wire(), "modifies": values,
                                    "time": values, "asset": values, "isCross": values, "leverage": values,
                                    "ntli": values, "name": values, "subAccountUser": values, "isDeposit": values,
                                    "usd": values, "token": values, "amount": values}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=1, max_size=4), st.booleans())
def test_any_signed_action_gets_a_receipt_and_replays_identically(batch: list[dict[str, Any]], vault: bool) -> None:
    chain = Chain()
    assert chain.run(key(1), Deposit(TRADER.address, USDC, 10**12)).code == Code.OK
    raws = []
    for i, action in enumerate(batch):
        try:
            raw = hltx.sign_l1(TRADER, action, chain.time + 1 + i, vault=bytes(20) if vault else None)
            decode_tx(raw)
        except (TxError, TypeError, ValueError, OverflowError):
            continue  # not encodable or refused by the decoder: never reaches a block
        raws.append(raw)
    result = chain.block(*raws)
    assert len(result.receipts) == len(raws)
    replica = Chain()
    replica.run(key(1), Deposit(TRADER.address, USDC, 10**12))
    replica.time = chain.time - 1000
    assert replica.block(*raws).app_hash == result.app_hash


def test_act_as_on_a_chain_without_sub_accounts_is_refused_not_raised() -> None:
    """Regression: with no agent or sub-account anywhere yet (a fresh chain), an ``act_as``
    skipped the who-acts check and reached the handlers, which raised: one signed
    transaction from any funded account halted the chain."""
    from state.tx import ActAs, Transfer

    chain = Chain()
    chain.fund(key(3), USDC, 10**9)
    r = chain.run(key(3), ActAs(bytes(20), Transfer(key(3).address, USDC, 1)))
    assert r.code == Code.UNAUTHORIZED
    raw = hltx.sign_l1(TRADER, {"type": "noop"}, chain.time + 1, vault=bytes(20))
    chain.run(key(1), Deposit(TRADER.address, USDC, 10**9))
    assert chain.block(raw).receipts[0].code == Code.UNAUTHORIZED
