"""A compiled build (mypyc, ``BOOKCHAIN_MYPYC=1 pip install .``) computes what the sources
compute.

Compiled code differs from interpreted code where types are concerned (it checks
annotations at run time) and nowhere else in what it computes, so the danger is a silent
difference in some path of the state machine: a compiled validator would fork from the
pure ones. This compiles the modules setup.py compiles, exactly as it does, then applies
three flows both ways and compares the app hashes, which chain every height's writes:
the devnet's order flow (spot and perps, cancels, crossing IOCs), the benchmark's
1,000-account mix, and a leveraged book through an oracle crash (liquidations, borrows,
interest, a funding settlement).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FLOWS = """
import contextlib, io, json, sys
import state.risk
from state.build import build_name
from bench.apply_instructions import workload
from bench.devnet_flow_apply import run
from bench.state_apply import bench_price_move
out = io.StringIO()
with contextlib.redirect_stdout(out):
    workload(1)
print(json.dumps({
    "risk_module": state.risk.__file__,
    "build": build_name(),
    "devnet_flow": run(16, 300, 3000)["app_hash"],
    "bench_flow": out.getvalue().split()[-1],
    "price_move": bench_price_move(400)["app_hash"],
}))
"""


def compiled_modules() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["tool"]["bookchain"]["mypyc"]["modules"])


def can_compile() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


def run_flows(pythonpath: str, cwd: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    done = subprocess.run([sys.executable, "-c", FLOWS], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(not can_compile(), reason="no C compiler or Python headers on this machine")
def test_compiled_state_machine_reaches_the_same_app_hashes(tmp_path: Path) -> None:
    build = tmp_path / "compiled"
    shutil.copytree(ROOT / "state", build / "state", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", build)  # the mypy settings the sources are checked with
    modules = compiled_modules()
    done = subprocess.run([sys.executable, "-m", "mypyc", *modules], cwd=build, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    extension = sysconfig.get_config_var("EXT_SUFFIX")
    assert all((build / m).with_suffix(extension).exists() for m in modules)

    compiled = run_flows(f"{build}{os.pathsep}{ROOT}", build)
    pure = run_flows(str(ROOT), ROOT)

    assert compiled.pop("risk_module").endswith(extension)  # the flows really ran compiled code
    assert pure.pop("risk_module").endswith(".py")
    assert (compiled.pop("build"), pure.pop("build")) == ("mypyc", "interpreted")
    assert compiled == pure
