"""Which build of the state machine this process runs.

A ``BOOKCHAIN_MYPYC=1 pip install .`` build loads the hot state modules from C extensions
(setup.py); any other install runs the sources. Both compute the same app hashes
(tests/state/test_compiled_build.py), so this is for operators and benchmarks: a figure
means little without the build it was measured on.
"""

from __future__ import annotations

import sys
from importlib.machinery import EXTENSION_SUFFIXES


def compiled_modules() -> list[str]:
    """Names of the loaded ``state`` modules that come from extension modules, sorted. The
    state tree's C code (``state._merkle``) is not counted: every build with a C compiler
    has it (state/merkle.py)."""
    return sorted(name for name, mod in list(sys.modules.items())
                  if name.startswith("state.") and not name.startswith("state._") and (getattr(mod, "__file__", None) or "").endswith(tuple(EXTENSION_SUFFIXES)))


def build_name() -> str:
    """``"mypyc"`` when the state machine runs compiled, else ``"interpreted"``."""
    import state.machine  # noqa: F401  (the modules that apply blocks are loaded, so the answer is about them)

    return "mypyc" if compiled_modules() else "interpreted"
