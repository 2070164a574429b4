"""Who a request's client is, for the per-client limits (node/readbudget.py,
node/submitlimit.py, node/wsquota.py).

A client is its remote IP address, except that an IPv6 client is its /64 network: one host
is usually handed a whole /64, and a client that took a fresh address from it for every
request would otherwise get a fresh share each time. An IPv4-mapped IPv6 address is its
IPv4 address. Loopback stays itself (the limits exempt it by default).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web


@lru_cache(maxsize=4096)
def client_key(remote: str) -> str:
    """The limits' key of a remote address (see the module docstring)."""
    if ":" not in remote:
        return remote  # IPv4 (or not an IP at all: a unix socket's peer, kept as given)
    try:
        ip = ipaddress.IPv6Address(remote.split("%", 1)[0])
    except ValueError:
        return remote
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.is_loopback:
        return str(ip)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


def client_of(request: web.BaseRequest) -> str | None:
    """``request``'s client, or None when the transport does not say (then no per-client
    limit applies; the node-wide ones still do)."""
    remote = request.remote
    return None if remote is None else client_key(remote)
