"""What a transaction costs admission: its weight, one per order action it carries.

Why not one per transaction: there are no fees, and a refused action costs its sender
nothing, so admission counted in transactions let a 64-order ``Batch`` cost what one order
costs. An audit's flood of 100 funded accounts sending 64-order batches whose orders all
failed in the block refused 36% of an honest client's transactions and put its p99
submit-to-commit at 3.4 s: the window, the shares and the block cut were all counted in
transactions, each of which carried 64 times the work the count assumed. Hyperliquid
counts each order and cancel of a batch as one action against an address's rate limit;
the node does the same wherever admission counts (node/admission.py, node/mempool.py).

The weight of a transaction:

- a native ``Batch``: its actions (orders, cancels, cancel-alls, modifies), one each;
- a native ``PlaceGroup``: its parent and its TP/SL children, one each (at most 3);
- a Hyperliquid ``order``, ``cancel``, ``cancelByCloid`` or ``batchModify``: the entries
  of its ``orders``, ``cancels`` or ``modifies`` list, one each;
- anything else (one order, a cancel, a transfer, a ``noop``): 1.

Never below 1: every transaction costs its signature check, its decode, its nonce and its
receipt, whatever it carries, and a ``noop`` costs exactly that, so it weighs what the
lightest transaction weighs and no less. Cancels weigh what orders weigh: a cancel in a
batch costs a look-up, a book removal and a receipt entry, less than an order that
matches, but a lighter cancel would reopen the same flood with batches of cancels of
orders that do not exist (refused, free). Hyperliquid's extra room for cancels is a quota
over time per address, a different instrument from a queue sized in time. Never above
``MAX_WEIGHT``, the most entries any action may hold (``Batch.parse``, state/hlexec.py),
so a malformed list the block will refuse cannot claim more.

Computed once per admitted transaction, on the node's hot path: a type test and a
``len``, no decoding beyond what verification already did.
"""

from __future__ import annotations

from typing import Final

from state.hltx import HlAction
from state.keys import PUBKEY_LEN
from state.tx import Batch, PlaceGroup, SignedTx

#: The most entries an action may carry (Batch.parse's max_len, state/hlexec.MAX_ORDERS).
MAX_WEIGHT: Final = 256
#: Hyperliquid L1 action type -> the list whose entries are its actions
_HL_LISTS: Final = {"order": "orders", "cancel": "cancels", "cancelByCloid": "cancels",
                    "batchModify": "modifies"}


def tx_weight(tx: SignedTx) -> int:
    """The admission weight of a decoded transaction (see the module's docstring)."""
    action = tx.action
    kind = type(action)
    if kind is Batch:
        return min(MAX_WEIGHT, len(action.actions))  # parse refuses an empty batch
    if kind is HlAction:
        name = _HL_LISTS.get(action.type)
        if name is None:
            return 1
        entries = action.body.get(name)
        return (min(MAX_WEIGHT, len(entries)) or 1) if type(entries) is list else 1
    if kind is PlaceGroup:
        return max(1, (action.parent is not None) + len(action.children))  # never below 1, whatever parse allows
    return 1


# A native envelope: fixarray(4 or 5), the public key (msgpack bin8 of 32 bytes), the nonce
# (a msgpack uint), then the action, an array whose first element is its tag.
_KEY_END: Final = 3 + PUBKEY_LEN
_UINT_LEN: Final = {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}  # head byte -> the encoded uint's length
_BATCH_TAG: Final = Batch.TAG


def claimed_weight(raw: bytes) -> int:
    """A lower bound of a native tx's weight read off its envelope, before it is decoded
    or its signature checked (node/admission.py judges a claimed signer with it): a
    ``Batch``'s action count from the header of its action list, 1 for anything else (or
    any shape this does not read). A decoded tx's ``tx_weight`` is never below it, so
    a refusal judged with it is one verification would make as well."""
    i = _KEY_END
    if len(raw) <= i + 4:
        return 1
    head = raw[i]
    i += 1 if head < 0x80 else _UINT_LEN.get(head, len(raw))  # the nonce
    # the action: [tag, items] (fixarray of 2), the tag a positive fixint, then the list
    if i + 3 >= len(raw) or raw[i] != 0x92 or raw[i + 1] != _BATCH_TAG:
        return 1
    head = raw[i + 2]
    if 0x91 <= head <= 0x9F:
        return head - 0x90
    if head == 0xDC and i + 4 < len(raw):
        return max(1, min(MAX_WEIGHT, (raw[i + 3] << 8) | raw[i + 4]))
    return 1
