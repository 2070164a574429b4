from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.cluster import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(Path(tmp_path_factory.mktemp("cluster")))
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()
