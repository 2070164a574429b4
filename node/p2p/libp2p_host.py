"""Build the py-libp2p 0.8.1 host with settings fit for a fixed validator set.

Defaults of ``libp2p.new_host`` that we change, and why:

* Security: only Noise. The default list also offers TLS, SECIO and *plaintext*; with
  plaintext a dialer merely announces a public key, so anyone could claim a
  validator's peer id. Noise proves possession of the ed25519 identity key.
* Muxer: only yamux (mplex has no flow control).
* Resource manager: no circuit breaker, rate limiter or "graceful degradation". After
  five failed dials (a peer that is restarting) the circuit breaker refuses *every*
  connection for 60 s, and the per-peer rate limiter can refuse a fast reconnect.
* Swarm retries: 0. Our reconnect loop owns backoff; libp2p's internal 3 retries
  would only hide how long a dial really takes.
* Auto-connector: disabled. It re-dials whatever sits in the peerstore (also banned
  peers) on its own schedule; the node dials exactly its configured peers.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from libp2p import new_host
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.basic_host import BasicHost
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.network.swarm import Swarm
from libp2p.rcmgr import ResourceManager
from libp2p.rcmgr.manager import ResourceLimits
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

log = logging.getLogger(__name__)


async def _never(*_args: Any, **_kwargs: Any) -> None:
    """Replacement for AutoConnector.maybe_connect: we do our own dialing."""


def build_host(
    key_pair: KeyPair, *, dial_timeout_s: float, negotiate_timeout_s: float
) -> BasicHost:
    """A TCP/Noise/yamux host for ``key_pair``; call only from the trio side."""
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    resource_manager = ResourceManager(
        limits=ResourceLimits(max_connections=1000, max_streams=10000),
        enable_metrics=False,
        enable_circuit_breaker=False,
        enable_graceful_degradation=False,
        enable_rate_limiting=False,
        enable_memory_pooling=False,
    )
    connection_config = ConnectionConfig(
        dial_timeout=dial_timeout_s,
        outbound_upgrade_timeout=dial_timeout_s,
        inbound_upgrade_timeout=dial_timeout_s,
        outbound_stream_protocol_negotiation_timeout=negotiate_timeout_s,
        inbound_stream_protocol_negotiation_timeout=negotiate_timeout_s,
        min_connections=0,
        low_watermark=0,
    )
    host = new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        resource_manager=resource_manager,
        connection_config=connection_config,
        negotiate_timeout=max(1, int(negotiate_timeout_s)),
    )
    basic = cast(BasicHost, host)
    swarm = basic.get_network()
    if isinstance(swarm, Swarm):
        swarm.retry_config = RetryConfig(max_retries=0)
        auto_connector = getattr(swarm, "auto_connector", None)
        if auto_connector is not None:
            auto_connector.maybe_connect = _never
        else:  # pragma: no cover - depends on the libp2p version
            log.warning("libp2p swarm has no auto_connector; nothing to disable")
    return basic
