"""The compiled build's widened multiply (setup.py, ``widen_multiply_fast_path``) gives the
same product as Python for every pair of ints.

A compiled validator whose multiply differed from Python's in one corner (a sign, the edge
of the machine word, a product that just overflows it) would fork from the interpreted
ones, and the flows of ``test_compiled_build.py`` need not reach that corner. So this
compiles a one-line module against the patched runtime and checks it at the edges of
mypyc's small-int range (|x| < 2**62) and of the word, and on random pairs.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.compiled_tree import can_compile, project_setup

ROOT = Path(__file__).resolve().parents[2]
SMALL = 2**62  # mypyc keeps ints in [-2**62, 2**62) unboxed ("short", stored as twice the value)

PROBE = '''
def mul(a: int, b: int) -> int:
    return a * b


def mul_by_million(a: int) -> int:
    return a * 1_000_000
'''

BUILD = '''
import sys
sys.path.insert(0, {root!r})
from setuptools import setup
from bench.compiled_tree import project_setup
setup(name="probe", ext_modules=project_setup().mypyc_extensions(["bookchain_mulprobe.py"]),
      script_args=["build_ext", "--inplace"])
'''


def test_the_patch_applies_to_the_installed_mypyc(tmp_path: Path) -> None:
    """If a mypyc release rewrites CPyTagged_Multiply, the build silently falls back to the
    slow path; this says so."""
    from mypyc.build import include_dir

    project = project_setup()
    assert project.widen_multiply_fast_path(include_dir(), tmp_path / "rt") is True
    header = (tmp_path / "rt" / "CPy.h").read_text()
    assert "__builtin_mul_overflow" in header
    assert project.MULTIPLY_FAST_PATH not in header
    assert (tmp_path / "rt" / "int_ops.c").exists()  # the rest of the runtime is copied as it is


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    if not can_compile():
        pytest.skip("no C compiler or Python headers on this machine")
    where = tmp_path_factory.mktemp("mulprobe")
    (where / "bookchain_mulprobe.py").write_text(PROBE)
    (where / "build_probe.py").write_text(BUILD.format(root=str(ROOT)))
    subprocess.run([sys.executable, "build_probe.py"], cwd=where, capture_output=True, text=True, timeout=600,
                   check=True)
    sys.path.insert(0, str(where))
    try:
        module = importlib.import_module("bookchain_mulprobe")
        assert not module.__file__.endswith(".py")  # the compiled extension, not the source
        yield module
    finally:
        sys.path.remove(str(where))
        sys.modules.pop("bookchain_mulprobe", None)


EDGES = sorted({s * v for s in (1, -1) for v in (
    0, 1, 2, 3, 1_000_000, 2**30 - 1, 2**30, 2**31 - 1, 2**31, 2**31 + 1, 2**32, 3_037_000_499, 3_037_000_500,
    2**61, 2**62 - 1, 2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64, 10**18, 10**24)})


def check(mul: Callable[[int, int], int], a: int, b: int) -> None:
    got = mul(a, b)
    assert got == a * b and type(got) is int, (a, b, got)


def test_products_at_the_edges_of_the_small_int_range(probe: ModuleType) -> None:
    for a in EDGES:
        for b in EDGES:
            check(probe.mul, a, b)
        assert probe.mul_by_million(a) == a * 1_000_000


@settings(max_examples=3000, deadline=None)
@given(st.integers(-(2**64), 2**64) | st.integers(-SMALL, SMALL - 1) | st.integers(-(2**33), 2**33),
       st.integers(-(2**64), 2**64) | st.integers(-SMALL, SMALL - 1) | st.integers(-(2**33), 2**33))
def test_random_products(probe: ModuleType, a: int, b: int) -> None:
    check(probe.mul, a, b)
    assert probe.mul_by_million(a) == a * 1_000_000
