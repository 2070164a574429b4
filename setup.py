"""C extensions: the batch signature verifier (always tried) and the optional compiled build
of the state machine (mypyc); everything else is in pyproject.toml.

``node._sigbatch`` (node/_sigbatch.c, node/_edcurve.c) verifies a batch of signatures with
one multi-scalar multiplication and one GIL release (node/sigbatch.py says why). It is
built whenever a C compiler and the Python headers are present, editable installs
included, and is optional: without it the install still succeeds and nodes verify one call
at a time, with the same answers.

``BOOKCHAIN_MYPYC=1 pip install .`` compiles the modules listed under
``[tool.bookchain.mypyc]`` in pyproject.toml to C extensions with mypyc (applying blocks
runs ~3x faster; README, "Compiled build"); the README's first command installs this way.
Where no C compiler (or no Python headers) can build an extension, the same command
installs the interpreted state machine and says so. Without the variable the install is
pure Python, as the README's test command does. A compiled build computes exactly what the sources
compute (``tests/state/test_compiled_build.py`` applies the same blocks both ways and
compares every app hash), so compiled and pure validators can share a chain.

Editable installs never compile the state machine: an extension built next to its source
would shadow later edits of that source, and a node running stale code forks from the chain.

The compiled build uses a copy of mypyc's C runtime (``lib-rt``) with one function changed,
``CPyTagged_Multiply``: see ``widen_multiply_fast_path``. ``bench/compiled_tree.py`` runs
this file (``build_ext --inplace``), so benchmarks and tests compile exactly this way.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
MYPY = "mypy>=1.10"


def compiled_modules() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["tool"]["bookchain"]["mypyc"]["modules"])


MERKLE = Extension("state._merkle", ["state/_merkle.c"], extra_compile_args=["-O3"], optional=True)
SIGBATCH = Extension("node._sigbatch", ["node/_sigbatch.c", "node/_edcurve.c"], depends=["node/_edcurve.h"],
                     extra_compile_args=["-O3"], optional=True)

# mypyc's inline multiply of two small ints: it takes the fast path only when both
# operands are in [0, 2**30) and otherwise boxes both into Python ints.
MULTIPLY_FAST_PATH = """        if (!CPyTagged_IsMultiplyOverflow(left, right)) {
            return left * CPyTagged_ShortAsSsize_t(right);
        }"""
# The same product, kept unboxed whenever it fits a machine word. A small int is stored
# tagged, as twice its value, so ``left`` (2a) times b is the tagged form of a * b, and
# every even word is a valid small int: when the multiplication does not overflow the
# word, the result is exact. When it does, the original slow path runs, as before.
MULTIPLY_WIDE_FAST_PATH = """        Py_ssize_t product;  /* bookchain: exact overflow check (setup.py) */
        if (!__builtin_mul_overflow((Py_ssize_t)left, CPyTagged_ShortAsSsize_t(right), &product)) {
            return (CPyTagged)product;
        }"""


def widen_multiply_fast_path(runtime: str, dest: Path) -> bool:
    """Copy mypyc's C runtime directory ``runtime`` to ``dest`` and widen its multiply fast
    path to every product that fits a machine word; returns whether the patch applied.

    Why: mypyc takes its inline multiply only when both operands are in [0, 2**30), so in
    the compiled state machine every product of a notional, and every product with a
    negative operand, went through Python's int objects. Widening it cut the instructions
    ``apply_block`` executes by 9.2% on the devnet's order flow and by 5.5% per tx on the
    benchmark's (callgrind; README, "Compiled build"). The change is one exact overflow test (gcc and clang's
    ``__builtin_mul_overflow``), so every product is the same number as before. If a mypyc
    release changes the function, the copy is left as it is: the build is slower, never
    different."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(runtime, dest, ignore=shutil.ignore_patterns("__pycache__"))
    header = dest / "CPy.h"
    text = header.read_text()
    if text.count(MULTIPLY_FAST_PATH) != 1:
        print("setup.py: mypyc's CPyTagged_Multiply is not the expected one; building with mypyc's own "
              "runtime (slower, same results)", file=sys.stderr)
        return False
    header.write_text(text.replace(MULTIPLY_FAST_PATH, MULTIPLY_WIDE_FAST_PATH))
    return True


def mypyc_extensions(modules: list[str]) -> list[Extension]:
    """mypyc's extensions for ``modules`` (paths relative to the current directory), built
    against the widened runtime copy in ``build/mypyc-runtime``. The generated C includes
    the runtime's sources (``#include <init.c>``, which includes ``"CPy.h"`` beside it), so
    the copy replaces mypyc's directory on the include path rather than going before it."""
    from mypyc.build import include_dir, mypycify

    extensions = mypycify(modules, opt_level="3")
    runtime = Path("build") / "mypyc-runtime"
    widen_multiply_fast_path(include_dir(), runtime)
    for ext in extensions:
        ext.include_dirs = [str(runtime.resolve()) if d == include_dir() else d for d in ext.include_dirs]
    return extensions


def c_compiler_works() -> str:
    """"" when a C extension can be built here, else why not. Compiles a file that includes
    ``Python.h`` with the compiler setuptools would use, so a missing compiler and missing
    Python headers both show, before mypyc generates anything."""
    import tempfile

    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler, get_python_inc

    with tempfile.TemporaryDirectory(prefix="bookchain-cc-") as d:
        source = Path(d) / "probe.c"
        source.write_text("#include <Python.h>\nint bookchain_probe(void) { return 0; }\n")
        compiler = new_compiler()
        customize_compiler(compiler)
        try:
            compiler.compile([str(source)], output_dir=d, include_dirs=[get_python_inc()])
        except Exception as e:  # a probe: any failure to compile means "no" (distutils' error classes
            # come from whichever copy of distutils is loaded, so they cannot be named here)
            return str(e).splitlines()[0] if str(e) else type(e).__name__
    return ""


def build_options() -> dict[str, object]:
    """The batch verifier for every build. For a compiled one, also the mypyc modules, and
    mypy (which carries mypyc) as a build requirement: a PEP 517 front end asks for
    requirements in a first pass, where mypyc is not installed yet, and builds in a second
    one, where it is."""
    if os.environ.get("BOOKCHAIN_MYPYC", "") != "1":
        return {"ext_modules": [SIGBATCH, MERKLE]}
    if any(arg in ("editable_wheel", "develop") for arg in sys.argv):
        raise SystemExit("BOOKCHAIN_MYPYC=1 builds a wheel: use `pip install .`, not `pip install -e .` "
                         "(an extension next to its source would shadow later edits)")
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return {"setup_requires": [MYPY], "ext_modules": [SIGBATCH, MERKLE]}
    why_not = c_compiler_works()
    if why_not:  # the README's first command asks for the compiled build; without a compiler it still installs
        print(f"setup.py: no working C compiler ({why_not}): installing the interpreted state machine "
              "(same results; blocks apply ~3x slower)", file=sys.stderr)
        return {"setup_requires": [MYPY], "ext_modules": [SIGBATCH, MERKLE]}
    os.chdir(ROOT)  # mypycify takes paths relative to the project
    sigbatch = [SIGBATCH] if (ROOT / "node" / "_sigbatch.c").exists() else []  # not in a compiled_tree copy
    return {"setup_requires": [MYPY], "ext_modules": [*sigbatch, MERKLE, *mypyc_extensions(compiled_modules())]}


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import it for the functions above
    setup(**build_options())  # type: ignore[arg-type]
