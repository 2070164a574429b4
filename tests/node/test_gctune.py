"""The node's GC settings: thresholds applied, freeze optional, collection still works."""

from __future__ import annotations

import gc

from node.gctune import MIDDLE, OLD, YOUNG, tune_for_throughput


def test_tune_sets_thresholds_and_cycles_are_still_collected() -> None:
    before = gc.get_threshold()
    try:
        tune_for_throughput(freeze=False)
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)

        class Node:
            other: object = None

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle only the collector can free
        del a, b
        assert gc.collect() >= 2
    finally:
        gc.set_threshold(*before)
