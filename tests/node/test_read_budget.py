"""Clients' heavy reads get a bounded share of the event loop (node/readbudget.py).
Counted work on a fake clock, no timing."""

from node.readbudget import ReadBudget


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _flood(budget: ReadBudget, clock: Clock, seconds: float, cost_s: float) -> int:
    """A client asking for a read costing ``cost_s`` of loop time back to back; answered reads."""
    served = 0
    end = clock.t + seconds
    while clock.t < end:
        if budget.may_read():
            started = budget.clock()
            clock.t += cost_s  # the read holds the loop
            budget.charge(started)
            served += 1
        else:
            clock.t += 0.001  # a refusal costs (nearly) nothing; the client retries
    return served


def test_reads_get_at_most_their_share_of_the_loop() -> None:
    clock = Clock()
    budget = ReadBudget(share=0.25, burst_s=0.25, clock=clock)
    served = _flood(budget, clock, seconds=10.0, cost_s=0.02)  # historicalOrders-sized reads
    # 10 s x 25% + the burst, in 20 ms reads: ~137, never the ~500 an unbounded loop serves
    assert served * 0.02 <= 10.0 * 0.25 + 0.25 + 0.02
    assert budget.refused > 0
    assert served > 100  # reads are throttled, not stopped


def test_a_quiet_node_answers_every_read() -> None:
    clock = Clock()
    budget = ReadBudget(share=0.25, burst_s=0.25, clock=clock)
    for _ in range(100):  # one 2 ms read every 100 ms: 2% of the loop
        assert budget.may_read()
        started = budget.clock()
        clock.t += 0.002
        budget.charge(started)
        clock.t += 0.098
    assert budget.refused == 0
