"""What a Hyperliquid action maps to is a native action the native decoder would accept.

Hyperliquid-signed transactions are mapped onto native actions at execution
(state/hlexec.py), after a decoder that knows nothing of the native rules. So every bound
the native decoder enforces (a positive amount, a 20-byte address, one level of
``act_as``) must hold of the mapped action too, or the mapping is a way around it: a
negative ``usd`` in ``subAccountTransfer`` once moved funds out of any account a signer
named, a sub-account transfer signed with ``vaultAddress`` nested two ``act_as`` and halted
the chain, and an address with spaces credited a 19-byte account no key controls. This
draws signed actions with extreme and malformed fields, checks each mapped action
against the native decoder, applies it in a block (which must not raise) and checks that a
node restarted from the records after it holds the same state."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state import agents, hlexec, hltx
from state.eip712 import EthKey
from state.errors import TxError
from state.tx import ActAs, Batch, Deposit, action_to_list, decode_tx, parse_action
from tests.harness import BTC, USDC, Chain, key

TRADER = EthKey(bytes([5]) * 32)
OTHER = key(9)

HEX = st.sampled_from(list("0123456789abcdefABCDEF \t\n\r"))


def _hex(digits: int) -> st.SearchStrategy[str]:
    return st.builds(lambda prefix, body: prefix + body, st.sampled_from(["0x", "0X", "", "0x0"]),
                     st.text(HEX, min_size=max(0, digits - 4), max_size=digits + 4))


def _base() -> tuple[Chain, bytes]:
    c = Chain()
    c.run(key(1), Deposit(TRADER.address, USDC, 10**12))
    c.run(key(1), Deposit(TRADER.address, BTC, 10**10))
    c.fund(OTHER, USDC, 10**9)
    order = {"a": 0, "b": True, "p": "50000", "s": "0.01", "r": False, "t": {"limit": {"tif": "Gtc"}},
             "c": "0x" + "ab" * 16}
    c.block(hltx.sign_l1(TRADER, {"type": "order", "orders": [order], "grouping": "na"}, c.time + 1))
    c.block(hltx.sign_l1(TRADER, {"type": "createSubAccount", "name": "e1"}, c.time + 2))
    sub = agents.sub_account_address(TRADER.address, "e1")
    assert sub in c.ex.subs
    return c, sub


BASE, SUB = _base()

addresses = st.one_of(st.just("0x" + OTHER.address.hex()), st.just("0x" + SUB.hex()), _hex(40),
                      st.just("0x" + "11" * 19 + "  "), st.just("0x" + " " * 40))
cloids = st.one_of(st.just("0x" + "ab" * 16), _hex(32), st.just("0x" + " " * 32), st.none())
ints = st.one_of(st.integers(-3, 3), st.integers(-(2**64), 2**64 - 1),
                 st.sampled_from([-(2**62), -(2**63), 2**62, 2**63 - 1, 2**64 - 1, 10**6, -(10**6), -(10**9)]))
decimals = st.one_of(st.sampled_from(["0", "1", "0.01", "59000", "50000", "3000.5", "0.00001", "1" + "0" * 39,
                                      "9" * 40, "0.000000001", "1.", ".5", "1e3", "-1", " 1", "00001"]),
                     st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{0,10})?\Z"))
assets = st.one_of(st.sampled_from([0, 1, 2, 3, 10_000, 10_001, 10_002, -1, 99, True]), ints)
wires = st.fixed_dictionaries(
    {"a": assets, "b": st.booleans(), "p": decimals, "s": decimals, "r": st.booleans(),
     "t": st.one_of(st.builds(lambda tif: {"limit": {"tif": tif}}, st.sampled_from(["Gtc", "Ioc", "Alo", "x"])),
                    st.builds(lambda m, px, tpsl: {"trigger": {"isMarket": m, "triggerPx": px, "tpsl": tpsl}},
                              st.booleans(), decimals, st.sampled_from(["tp", "sl"])))},
    optional={"c": cloids})
order_ids = st.one_of(ints, cloids)

l1_actions = st.one_of(
    st.fixed_dictionaries({"type": st.just("order"), "orders": st.lists(wires, max_size=4),
                           "grouping": st.sampled_from(["na", "normalTpsl", "positionTpsl"])}),
    st.fixed_dictionaries({"type": st.just("cancel"),
                           "cancels": st.lists(st.fixed_dictionaries({"a": assets, "o": ints}), max_size=3)}),
    st.fixed_dictionaries({"type": st.just("cancelByCloid"),
                           "cancels": st.lists(st.fixed_dictionaries({"asset": assets, "cloid": cloids}), max_size=3)}),
    st.fixed_dictionaries({"type": st.just("modify"), "oid": order_ids, "order": wires}),
    st.fixed_dictionaries({"type": st.just("updateLeverage"), "asset": assets, "isCross": st.booleans(), "leverage": ints}),
    st.fixed_dictionaries({"type": st.just("updateIsolatedMargin"), "asset": assets, "isBuy": st.booleans(), "ntli": ints}),
    st.fixed_dictionaries({"type": st.just("subAccountTransfer"), "subAccountUser": addresses,
                           "isDeposit": st.booleans(), "usd": ints}),
    st.fixed_dictionaries({"type": st.just("subAccountSpotTransfer"), "subAccountUser": addresses,
                           "isDeposit": st.booleans(), "token": st.sampled_from(["USDC", "BTC", "X"]), "amount": decimals}),
    st.fixed_dictionaries({"type": st.just("borrowLend"), "operation": st.sampled_from(["supply", "withdraw", "borrow", "repay"]),
                           "token": assets, "amount": st.one_of(st.none(), decimals)}),
)
user_actions = st.one_of(
    st.fixed_dictionaries({"type": st.just("usdSend"), "destination": addresses, "amount": decimals}),
    st.fixed_dictionaries({"type": st.just("spotSend"), "destination": addresses,
                           "token": st.sampled_from(["USDC", "BTC", "USDC:0x1"]), "amount": decimals}),
    st.fixed_dictionaries({"type": st.just("withdraw3"), "destination": addresses, "amount": decimals}),
)


def must_pass_the_native_decoder(action: Any) -> None:
    """``action`` (a mapping's output) as the native decoder would take it; raises TxError."""
    if action is hlexec.NOOP:
        return
    if isinstance(action, ActAs):
        assert len(action.account) == 20, action
        assert not isinstance(action.action, ActAs), "act_as nests"
        must_pass_the_native_decoder(action.action)
        return
    if isinstance(action, Batch):
        for item in action.actions:
            if not isinstance(item, hlexec.Refused):  # an order the mapping refused, answered in the receipt
                parse_action(action_to_list(item))
        return
    parse_action(action_to_list(action))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.tuples(l1_actions, st.sampled_from([None, "sub", "zero"])),
                 st.tuples(user_actions, st.just("user"))))
def test_a_mapped_action_obeys_the_native_rules_and_applies(drawn: tuple[dict[str, Any], str | None]) -> None:
    action, how = drawn
    c = BASE.fork()
    nonce = c.time + 5
    try:
        if how == "user":
            raw = hltx.sign_user(TRADER, {**action, hltx.USER_SIGNED[action["type"]][2]: nonce})
        else:
            vault = {"sub": SUB, "zero": bytes(20), None: None}[how]
            raw = hltx.sign_l1(TRADER, action, nonce, vault=vault)
        tx = decode_tx(raw)
    except (TxError, ValueError, OverflowError):
        return  # refused before it could reach a block
    try:
        mapped = hlexec.resolve(c.ex, tx)
    except TxError:
        mapped = None  # refused by the mapping: the block answers it with a receipt
    if mapped is not None:
        try:
            must_pass_the_native_decoder(mapped)
        except TxError as err:
            raise AssertionError(f"{action} maps to {mapped!r}, which the native decoder refuses: {err}") from None
    c.block(raw)  # never raises; the harness checks the write set against the state
    c.block()
    assert c.fork().sm.app_hash == c.sm.app_hash
