"""The header by which the front-end process names a request's client to the node."""

from typing import Final

#: the client's address (its limits' key, node/clientaddr.py), on every request the
#: front-end relays; trusted only on the node's internal socket (``RpcServer.start_internal``)
CLIENT_HEADER: Final = "X-Bookchain-Client"
