"""C extensions: the batch signature verifier (always tried) and the optional compiled build
of the state machine (mypyc); everything else is in pyproject.toml.

``node._sigbatch`` (node/_sigbatch.c) verifies a batch of signatures through libsodium with
one GIL release (node/sigbatch.py says why). It is built whenever a C compiler and the
Python headers are present, editable installs included, and is optional: without it the
install still succeeds and nodes verify one call at a time, with the same answers.

``BOOKCHAIN_MYPYC=1 pip install .`` compiles the modules listed under
``[tool.bookchain.mypyc]`` in pyproject.toml to C extensions with mypyc (applying blocks
runs ~1.4x faster; README, "Compiled build"). Without the variable the install is pure
Python, as the README's commands do. A compiled build computes exactly what the sources
compute (``tests/state/test_compiled_build.py`` applies the same blocks both ways and
compares every app hash), so compiled and pure validators can share a chain.

Editable installs never compile the state machine: an extension built next to its source
would shadow later edits of that source, and a node running stale code forks from the chain.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
MYPY = "mypy>=1.10"


def compiled_modules() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["tool"]["bookchain"]["mypyc"]["modules"])


SIGBATCH = Extension("node._sigbatch", ["node/_sigbatch.c"], optional=True)


def build_options() -> dict[str, object]:
    """The batch verifier for every build. For a compiled one, also the mypyc modules, and
    mypy (which carries mypyc) as a build requirement: a PEP 517 front end asks for
    requirements in a first pass, where mypyc is not installed yet, and builds in a second
    one, where it is."""
    if os.environ.get("BOOKCHAIN_MYPYC", "") != "1":
        return {"ext_modules": [SIGBATCH]}
    if any(arg in ("editable_wheel", "develop") for arg in sys.argv):
        raise SystemExit("BOOKCHAIN_MYPYC=1 builds a wheel: use `pip install .`, not `pip install -e .` "
                         "(an extension next to its source would shadow later edits)")
    try:
        from mypyc.build import mypycify
    except ImportError:
        return {"setup_requires": [MYPY], "ext_modules": [SIGBATCH]}
    os.chdir(ROOT)  # mypycify takes paths relative to the project
    return {"setup_requires": [MYPY], "ext_modules": [SIGBATCH, *mypycify(compiled_modules(), opt_level="3")]}


setup(**build_options())  # type: ignore[arg-type]
