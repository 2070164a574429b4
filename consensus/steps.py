"""Round steps (where a node is inside a height) and timeout kinds (what a timer means).

They are separate enums because a timer is not a step: ``REBROADCAST`` or ``WAIT_TXS``
fire without changing the step, and the WAL records steps, not timers.
"""

from __future__ import annotations

from enum import IntEnum


class RoundStep(IntEnum):
    NEW_HEIGHT = 0  # waiting ``timeout_commit_ms`` before round 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    COMMITTED = 4  # decided; waiting for the driver's Start of the next height


class TimeoutStep(IntEnum):
    PROPOSE = 1  # no valid proposal in time: prevote nil
    PREVOTE = 2  # >2/3 prevotes for different things: precommit nil
    PRECOMMIT = 3  # >2/3 precommits without a decision: next round
    NEW_HEIGHT = 4  # end of timeout_commit: start round 0
    WAIT_TXS = 5  # create_empty_blocks=False: the empty block interval elapsed
    REBROADCAST = 6  # re-send own votes of the current round, retry sync if behind
