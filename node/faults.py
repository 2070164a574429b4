"""Fault injection for the chaos suite and devnet drills, in one place.

A production node never enables any of it: every switch lives under ``"test"`` in
``config.json`` (``node.config.TestSwitches``), off by default, and the devnet turns on only
what its drills use. The driver and the runtime ask this object instead of reading the
switches themselves, so the consensus path carries no test logic of its own:

- ``isolated()``: a network cut (``allow_isolate`` → ``POST /debug/isolate``); while it
  lasts the node neither sends nor accepts consensus, transaction or sync traffic.
- ``votes_to_send(vote)``: an equivocating validator (``equivocate``) also sends a
  conflicting vote for the same height, round and type.
- ``propose_delay_s()``: a slow proposer (``slow_propose_ms``).
- ``POST /debug/oracle`` (``allow_oracle_override``): move this validator's price feed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from consensus.messages import Vote
from node.config import TestSwitches
from node.rpcerrors import RpcError, json_body
from state.errors import Code
from state.keys import PrivateKey

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Faults:
    def __init__(self, switches: TestSwitches, key: PrivateKey | None, chain_id: str,
                 oracle_feed: dict[str, int], symbols: set[str]) -> None:
        self.switches = switches
        self.key = key
        self.chain_id = chain_id
        self.oracle_feed = oracle_feed  # the runtime's feed, moved in place
        self.symbols = symbols
        self.isolated_until = 0.0  # monotonic deadline of a network cut

    def isolated(self) -> bool:
        return self.isolated_until > time.monotonic()

    def isolate(self, seconds: float) -> None:
        self.isolated_until = time.monotonic() + seconds

    def votes_to_send(self, vote: Vote) -> list[Vote]:
        """The vote, and with ``equivocate`` a conflicting twin of this validator's own vote
        (relayed votes of other validators pass through untouched)."""
        key = self.key
        if not self.switches.equivocate or key is None or vote.validator != key.pubkey:
            return [vote]
        other = hashlib.sha256(b"equivocate" + vote.block_hash).digest() if vote.block_hash else b"\x00" * 32
        return [vote, Vote.create(key, self.chain_id, vote.type, vote.height, vote.round, other)]

    def propose_delay_s(self) -> float:
        return self.switches.slow_propose_ms / 1000

    def routes(self) -> list[tuple[str, Handler]]:
        """The debug POST routes the switches enable."""
        out: list[tuple[str, Handler]] = []
        if self.switches.allow_isolate:
            out.append(("/debug/isolate", self.debug_isolate))
        if self.switches.allow_oracle_override:
            out.append(("/debug/oracle", self.debug_oracle))
        return out

    async def debug_isolate(self, request: web.Request) -> web.Response:
        """Cut this node off the network for ``{"seconds": N}`` (0..600)."""
        body = await json_body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 600:
            raise RpcError(400, Code.MALFORMED, "seconds must be a number in [0, 600]")
        self.isolate(seconds)
        return web.json_response({"isolated_for_s": seconds})

    async def debug_oracle(self, request: web.Request) -> web.Response:
        """Set this validator's price feed, e.g. ``{"BTC": 42000000000}``, to drill
        liquidations on a devnet."""
        body = await json_body(request)
        for symbol, price in body.items():
            if symbol not in self.symbols or type(price) is not int or price <= 0:
                raise RpcError(400, Code.MALFORMED, f"{symbol}: a known asset symbol and a positive integer price")
        self.oracle_feed.update(body)
        return web.json_response({"feed": self.oracle_feed})
