"""``bench.adl_crash`` stays runnable and measures what it says: every long is liquidated
and every one of their positions is closed by ADL against the shorts."""

from __future__ import annotations

from bench.adl_crash import crash


def test_every_bankrupt_long_is_deleveraged_against_the_shorts() -> None:
    r = crash(20)
    assert r["liquidated"] == 20 and r["adl_trades"] >= 20
    assert r["block_ms"] > 0
