"""``bookchain testnet --hosts`` takes IP addresses and DNS names only: an entry such as
``a:99999``, ``[::1]``, ``a_b`` or ``é`` used to be accepted (exit 0) and written into every
node's peer multiaddrs (``/dns4/a:99999/...``), which no node could parse at start."""

from __future__ import annotations

import pytest

from devnet.testnet import TestnetError, parse_hosts
from node.p2p.peers import parse_peer_multiaddr

PEER = "12D3KooWExcA4n2chMPdriPRm6TqB3kYjr878vDVQtKrd9B9fNKq"


@pytest.mark.parametrize("host", ["a:99999", "[::1]", "a_b", "é", "-x", "a..b", "bad host", "a/b", "x" * 64])
def test_an_entry_no_multiaddr_can_carry_is_refused(host: str) -> None:
    with pytest.raises(TestnetError):
        parse_hosts(f"{host},b,c,d")


@pytest.mark.parametrize("host", ["10.0.0.1", "::1", "node-1.example.com", "a", "A1.b2", "a."])
def test_addresses_and_names_pass_and_make_peer_multiaddrs(host: str) -> None:
    if host.endswith("."):
        with pytest.raises(TestnetError):
            parse_hosts(host)
        return
    assert parse_hosts(f" {host} ,b") == (host, "b")
    proto = "ip6" if ":" in host else "ip4" if host[0].isdigit() else "dns4"
    parse_peer_multiaddr(f"/{proto}/{host}/tcp/26656/p2p/{PEER}")
