"""Compile a copy of ``state/`` with mypyc, exactly as ``BOOKCHAIN_MYPYC=1 pip install .``
does (it runs the project's ``setup.py`` on the copy), for A/B runs of the benchmarks from
this checkout.

The compiled install is a wheel in site-packages, and ``python -m bench.…`` run from the
checkout imports the checkout's ``state/`` first (``-m`` puts the current directory ahead
of everything), so it would measure the interpreted build; every benchmark's JSON records
which one ran, as ``build``. Instead, from the checkout:

    python -m bench.compiled_tree /tmp/bc
    PYTHONPATH=/tmp/bc:. python -P -m bench.state_apply      # compiled (-P: not the cwd first)
    python -m bench.state_apply                              # interpreted

Node processes start with ``-P`` and inherit ``PYTHONPATH``, so ``PYTHONPATH=/tmp/bc
bookchain devnet up`` runs a compiled devnet. ``tests/state/test_compiled_build.py``
builds with this.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def project_setup() -> ModuleType:
    """The project's ``setup.py`` as a module, for its build functions (its ``setup()``
    call only runs when the file is run as a script)."""
    spec = importlib.util.spec_from_file_location("bookchain_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_modules() -> list[str]:
    """The modules setup.py compiles (``[tool.bookchain.mypyc]`` in pyproject.toml)."""
    modules: list[str] = project_setup().compiled_modules()
    return modules


def can_compile() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


def compile_tree(dest: Path) -> list[Path]:
    """Copy ``state/`` (and the mypy settings it is checked with) to ``dest`` and compile
    the listed modules there; returns the extension files. Raises on a failed build."""
    if (dest / "state").exists():
        shutil.rmtree(dest / "state")
    shutil.copytree(ROOT / "state", dest / "state", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", dest)
    shutil.copy(ROOT / "setup.py", dest)
    modules = compiled_modules()
    env = {**os.environ, "BOOKCHAIN_MYPYC": "1"}
    done = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=dest, env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError("mypyc failed:\n" + done.stdout[-3000:] + done.stderr[-3000:])
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = [(dest / m).with_suffix(suffix) for m in modules]
    missing = [str(p) for p in built if not p.exists()]
    if missing:
        raise RuntimeError(f"mypyc left no extension for {missing}")
    return built


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dest", type=Path, help="directory to build in (created; its state/ is replaced)")
    args = ap.parse_args()
    if not can_compile():
        raise SystemExit("no C compiler or Python headers on this machine")
    args.dest.mkdir(parents=True, exist_ok=True)
    built = compile_tree(args.dest.resolve())
    print(f"compiled {len(built)} modules; from the checkout: PYTHONPATH={args.dest.resolve()}:. python -P -m bench.…")


if __name__ == "__main__":
    main()
