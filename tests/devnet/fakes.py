"""A devnet directory whose nodes are all one in-process fake node (tests/cli/fakenode.py).

Why one fake behind every entry: the load generator spreads batches over all nodes and
follows the chain on the first, so the entries must share one chain; pointing them all at
one state machine gives that without running consensus.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devnet.genesis import DevnetSpec, create_devnet
from devnet.manifest import load_manifest, save_manifest
from state.genesis import Genesis
from tests.cli.fakenode import FakeNode


@contextmanager
def fake_devnet(home: Path, *, nodes: int = 2, traders: int = 4, block_ms: int = 50) -> Iterator[FakeNode]:
    create_devnet(home, DevnetSpec(nodes=nodes, traders=traders), peer_id_of=lambda _h: "12D3KooWStub")
    fake = FakeNode(Genesis.load(str(home / "genesis.json")), block_ms=block_ms).start()
    try:
        m = load_manifest(home)
        assert m is not None
        m.nodes = [dataclasses.replace(n, rpc_port=fake.port) for n in m.nodes]
        save_manifest(home, m)
        yield fake
    finally:
        fake.stop()
