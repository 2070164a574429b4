"""Agent (API) keys and sub-accounts: who a transaction acts for.

A transaction's signer is the key that signed it. It acts for:

- the signer's own account, usually;
- the master account, when the signer is an agent the master approved (``approve_agent``,
  Hyperliquid's ``approveAgent``, dYdX's permissioned keys) that has not expired, and the
  transaction's nonce (a millisecond timestamp) is not older than the approval's block: a
  transaction signed before an approval never acts under it;
- a sub-account, when the action is ``act_as(sub, action)`` and the sub-account belongs to
  the account the signer acts for (Hyperliquid's ``vaultAddress``, inside the signed bytes).

An agent may place, cancel and modify orders (and triggers), set the dead-man switch, and
do so for its master's sub-accounts; anything else it signs (withdraw, transfer, borrow,
lending switches, leverage, agents, sub-accounts) is refused with ``UNAUTHORIZED``. Nonces
stay per signing key: an agent's transactions use the agent's nonce record, which is kept
like any other, so none can be replayed. A revoked agent is forgotten at once; whatever it
signs afterwards acts for its own address, which holds nothing of the master's.

An approval needs no consent of the agent key, so anyone could make a fresh address their
agent before its first deposit: the agent key may therefore revoke its own approval, and
a key whose own address holds funds does for itself what an agent may not do for its
master (withdraw, transfer), which a Hyperliquid key, unable to sign a native revoke, needs.

Sub-accounts are full accounts with their own margin at a derived address
(``sub_account_address``); the master funds them with ``transfer`` and moves funds back with
``act_as(sub, transfer(master, ...))``. A sub-account has no sub-accounts or agents of its own.
An isolated-margin account (state/isolated.py) is a sub-account too, but never acted as: the
orders of its one market reach it by routing, and its margin moves only with
``update_isolated_margin``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from state.account import ISOLATED_PREFIX
from state.errors import Code, TxError
from state.exchange import Exchange
from state.receipts import OK, ActionResult
from state.tx import (
    ActAs,
    ApproveAgent,
    Batch,
    Cancel,
    CancelAll,
    CreateSubAccount,
    Modify,
    ModifyTrigger,
    PlaceGroup,
    PlaceOrder,
    PlaceTrigger,
    RevokeAgent,
    ScheduleCancel,
    SignedTx,
)

SUB_DOMAIN: Final = b"bookchain/sub-account\x00"

#: what an agent may sign (besides ``act_as`` around one of them): orders, triggers, cancels,
#: modifies and the dead-man switch
AGENT_ACTIONS: set[type] = {PlaceOrder, Cancel, CancelAll, Modify, PlaceTrigger, ModifyTrigger, PlaceGroup,
                             ScheduleCancel}


def sub_account_address(master: bytes, name: str) -> bytes:
    """The address of ``master``'s sub-account ``name``: no key has it, only the master."""
    return hashlib.sha256(SUB_DOMAIN + master + name.encode()).digest()[:20]


def live_agent(ex: Exchange, signer: bytes, nonce: int) -> list[Any] | None:
    """The approval ``signer`` holds as an agent, if it may act under it now with ``nonce``."""
    agent = ex.agents.get(signer)
    if agent is None:
        return None
    _master, valid_until, approved_ms, _name = agent
    if valid_until and ex.time_ms > valid_until:
        return None
    if nonce < approved_ms:
        return None
    return agent


def acting_account(ex: Exchange, tx: SignedTx, action: Any) -> tuple[bytes, Any, bool]:
    """(account, action, signed by an agent) of ``tx`` carrying ``action`` (its own, or the
    native action a Hyperliquid one stands for), or a TxError saying why it may not act: an
    agent beyond its rights, a sub-account of someone else."""
    account = tx.signer
    if type(action) is RevokeAgent and action.agent == tx.signer and tx.signer in ex.agents:
        # an agent key may always renounce its approval (it acts for itself doing so): no one
        # can register someone else's fresh address as an agent and freeze what it receives
        return tx.signer, action, False
    agent = live_agent(ex, tx.signer, tx.nonce) if ex.agents else None
    if agent is None and tx.signer in ex.agents:
        raise TxError(Code.UNAUTHORIZED, "this agent key has expired, or the transaction was signed before "
                                         "its approval")
    if agent is not None:
        account = agent[0]
    if isinstance(action, ActAs):
        sub = ex.subs.get(action.account)
        if sub is None or sub[0] != account:
            raise TxError(Code.UNAUTHORIZED, "not a sub-account of the signing account")
        if sub[1].startswith(ISOLATED_PREFIX):
            # its margin carries one market's position: acted as, it could trade any market
            # on that margin and leave the position behind when the market goes back to cross
            raise TxError(Code.UNAUTHORIZED, "an isolated account is not acted as: its market's orders go to "
                                             "it, and update_isolated_margin moves its margin")
        account, action = action.account, action.action
    if agent is not None:
        items = action.actions if isinstance(action, Batch) else (action,)
        for item in items:
            if type(item) not in AGENT_ACTIONS:
                if tx.signer in ex.accounts and not isinstance(tx.action, ActAs) and account == agent[0]:
                    # the key's own address holds funds (sent to it after, or despite, the
                    # approval): what an agent may not do for its master it does for itself,
                    # so a key that cannot sign a native revoke (a Hyperliquid one) can still
                    # move its own funds
                    return tx.signer, action, False
                raise TxError(Code.UNAUTHORIZED, "an agent key may only trade: place, cancel and modify orders")
    return account, action, agent is not None


def handle_approve_agent(ex: Exchange, signer: bytes, pubkey: bytes, a: ApproveAgent) -> ActionResult:
    if signer in ex.subs:
        raise TxError(Code.UNAUTHORIZED, "a sub-account's master approves agents, for all its sub-accounts")
    fresh = a.agent not in ex.accounts and (a.agent not in ex.nonces or a.agent in ex.agents)
    if a.agent == signer or a.agent in ex.subs or not fresh:
        raise TxError(Code.UNAUTHORIZED, "an agent must be a fresh key: not an account, nor one that signed before")
    held = ex.agents.get(a.agent)
    if held is not None and held[0] != signer:
        raise TxError(Code.UNAUTHORIZED, "this key is another account's agent")
    if a.valid_until_ms and a.valid_until_ms <= ex.time_ms:
        raise TxError(Code.AMOUNT_OUT_OF_RANGE, "valid_until_ms is already past")
    mine = ex.agents_of.setdefault(signer, set())
    if held is None and len(mine) >= ex.genesis.max_agents_per_account:
        raise TxError(Code.TOO_MANY_AGENTS, f"at most {ex.genesis.max_agents_per_account} agents per account")
    ex.agents[a.agent] = [signer, a.valid_until_ms, ex.time_ms, a.name]
    mine.add(a.agent)
    ex.touch_agent(a.agent)
    return ActionResult(OK, status="ok")


def handle_revoke_agent(ex: Exchange, signer: bytes, pubkey: bytes, a: RevokeAgent) -> ActionResult:
    held = ex.agents.get(a.agent)
    if held is None or (held[0] != signer and a.agent != signer):  # the master, or the agent renouncing
        raise TxError(Code.UNKNOWN_ACCOUNT, "no such agent of this account")
    del ex.agents[a.agent]
    ex.agents_of[held[0]].discard(a.agent)
    ex.touch_agent(a.agent)
    return ActionResult(OK, status="ok")


def handle_create_sub_account(ex: Exchange, signer: bytes, pubkey: bytes, a: CreateSubAccount) -> ActionResult:
    if signer in ex.subs:
        raise TxError(Code.UNAUTHORIZED, "a sub-account has no sub-accounts")
    if a.name.startswith("isolated:"):
        raise TxError(Code.MALFORMED, "names starting with 'isolated:' are the isolated positions' (set_margin_mode)")
    address = sub_account_address(signer, a.name)
    if address in ex.subs:
        raise TxError(Code.SUB_ACCOUNT_EXISTS, f"sub-account {a.name!r} exists already")
    if address in ex.nonces:  # a key signs for it: a 160-bit collision, never in practice
        raise TxError(Code.UNAUTHORIZED, "that address is taken")
    # An account there that no key has signed for only received transfers (anyone can compute
    # the address and send to it, e.g. `tx transfer sub:NAME` before the sub-account exists):
    # the master adopts it with its balance, as set_margin_mode adopts its isolated account.
    mine = ex.subs_of.setdefault(signer, set())
    if sum(1 for x in mine if not ex.subs[x][1].startswith(ISOLATED_PREFIX)) >= ex.genesis.max_sub_accounts:
        raise TxError(Code.TOO_MANY_SUB_ACCOUNTS, f"at most {ex.genesis.max_sub_accounts} sub-accounts")
    ex.subs[address] = [signer, a.name]
    mine.add(address)
    ex.touch_sub(address)
    return ActionResult(OK, status="ok", message=address.hex())
