"""When to retry block sync for later heights that only a minority of validators claims.

The core notes, per validator, the highest later height it has signed a message for
(``ConsensusCore._higher``). Validators with more than 1/3 of the power ahead include an
honest one, so this node is behind for certain and syncs at once and at every rebroadcast
tick (consensus/core.py). A smaller set ahead proves nothing: it may be one honest
validator that got the commit this node missed (sync is how this node gets past the
height then), or one byzantine validator that signed a vote for a height a billion blocks
away, which no peer can serve. Retrying on every tick for the latter would restart the
node's sync loop every second forever (asking every peer, logging each time), on the say
of one validator.

So each claimant's retries back off: a request at the first rebroadcast tick that finds
its claim above our height, then after 1, 2, 4, ... ticks, at most ``MAX_BACKOFF_TICKS``
apart. A claimant whose claim this node's height reaches (by consensus or by sync) is
forgotten at that Start: its claim was true, or at least harmless, and its next one is
tried promptly again. A claim that stays out of reach keeps its back-off whatever the
validator claims next (a higher height does not reset it), so over T ticks one
unreachable claim costs at most ``log2(MAX_BACKOFF_TICKS) + 1 + T / MAX_BACKOFF_TICKS``
requests instead of T.

Why per claimant, not one back-off for all: an honest validator one height ahead must
not wait behind a byzantine one's long back-off. Why not reset when our height advances:
an idle node's heights last about one rebroadcast interval (a block at least every
second), so a reset per height would hand the far-future claimant one request per
height, no better than one per tick. Why the cap: an honest claim that sync cannot serve
yet (its holder unreachable for a while) is still retried once every
``MAX_BACKOFF_TICKS`` intervals, so a node that is behind catches up within that many
intervals of the block becoming reachable. Why the claim is kept, not forgotten, when
sync finds nothing (which the core is not told anyway): forgotten, the validator's next
message for that height would be news again, its signature checked again and its
back-off restarted.

A claim of exactly our next height is what a validator that decided first sends; it
cannot be told from a byzantine one and is forgotten when we reach that height, so it
costs at most one request per height that outlasts a rebroadcast interval. Ticks are the
core's logical rebroadcast timeouts; nothing here reads a clock. State: one entry per
validator in the set, two integers of at most ``MAX_BACKOFF_TICKS`` each.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The longest wait between two sync requests for one validator's unconfirmed claim, in
#: rebroadcast intervals (64 s at the node's 1 s interval; 19 s at the simulator's).
MAX_BACKOFF_TICKS = 64


class SyncBackoff:
    """Per claimant: rebroadcast ticks left before its claim is due a sync request again,
    and the wait after that request (doubling up to ``MAX_BACKOFF_TICKS``)."""

    __slots__ = ("_waits",)

    def __init__(self) -> None:
        self._waits: dict[bytes, tuple[int, int]] = {}

    def due(self, claimants: Iterable[bytes]) -> bool:
        """One rebroadcast tick passed with these validators' claims above our height:
        whether any of them is due a sync request now. Each due claimant is backed off
        (its next request after twice the wait of this one); the others count down."""
        any_due = False
        for signer in sorted(claimants):
            left, wait = self._waits.get(signer, (0, 1))
            if left == 0:
                any_due = True
                self._waits[signer] = (wait - 1, min(2 * wait, MAX_BACKOFF_TICKS))
            else:
                self._waits[signer] = (left - 1, wait)
        return any_due

    def keep_only(self, claimants: Iterable[bytes]) -> None:
        """Forget every validator but these (the ones whose claims are still above our
        height at a Start): a reached claim leaves no back-off behind."""
        kept = set(claimants)
        self._waits = {k: v for k, v in sorted(self._waits.items()) if k in kept}
