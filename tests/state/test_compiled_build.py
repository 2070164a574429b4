"""A compiled build (mypyc, ``BOOKCHAIN_MYPYC=1 pip install .``) computes what the sources
compute.

Compiled code differs from interpreted code where types are concerned (it checks
annotations at run time) and nowhere else in what it computes, so the danger is a silent
difference in some path of the state machine: a compiled validator would fork from the
pure ones. This compiles the modules setup.py compiles, exactly as it does, then applies
five flows both ways and compares the app hashes, which chain every height's writes:
the devnet's order flow (spot and perps, cancels, crossing IOCs), the benchmark's
1,000-account mix, a leveraged book through an oracle crash (liquidations, borrows,
interest, a funding settlement), the benchmark's trigger flow (stop / take-profit
orders placed and fired as the oracle walks, bench/trigger_flow.py), and blocks of
equivocation offences (state/offences.py: recorded, repeated, expired, too new, malformed,
pruned at the evidence max age).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from bench.compiled_tree import can_compile, compile_tree, compiled_modules

ROOT = Path(__file__).resolve().parents[2]

FLOWS = """
import contextlib, io, json, sys
import state.risk
from state.build import build_name
from bench.apply_instructions import workload
from bench.devnet_flow_apply import run
from bench.state_apply import bench_price_move
from bench.trigger_flow import make_flow, run_flow
from state.machine import ExecBlock, StateMachine
from tests.harness import T0, make_genesis

def offence_flow():
    sm = StateMachine.open(make_genesis(evidence={"max_age_blocks": 3}), None)
    validators = [bytes([0xA0 + i]) * 32 for i in range(3)]
    for h in range(1, 13):  # each block: offences from 3 heights back (expired) to its own (too new), a repeat, a bad key
        offences = tuple((o, validators[(o + h) % 3]) for o in range(max(h - 4, 1), h + 1))
        sm.apply_block(ExecBlock(h, T0 + 1000 * h, (), (*offences, *offences[:1], (h, b"short"))))
    return sm.app_hash.hex()

out = io.StringIO()
with contextlib.redirect_stdout(out):
    workload(1)
print(json.dumps({
    "risk_module": state.risk.__file__,
    "build": build_name(),
    "devnet_flow": run(16, 300, 3000)["app_hash"],
    "bench_flow": out.getvalue().split()[-1],
    "price_move": bench_price_move(400)["app_hash"],
    "trigger_flow": run_flow(make_flow("triggers", 4, 400, 100, 20), 100)["app_hash"],
    "offence_flow": offence_flow(),
}))
"""


def run_flows(pythonpath: str, cwd: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    done = subprocess.run([sys.executable, "-c", FLOWS], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(not can_compile(), reason="no C compiler or Python headers on this machine")
def test_compiled_state_machine_reaches_the_same_app_hashes(tmp_path: Path) -> None:
    build = tmp_path / "compiled"
    build.mkdir()
    assert len(compile_tree(build)) == len(compiled_modules())
    extension = sysconfig.get_config_var("EXT_SUFFIX")

    compiled = run_flows(f"{build}{os.pathsep}{ROOT}", build)
    pure = run_flows(str(ROOT), ROOT)

    assert compiled.pop("risk_module").endswith(extension)  # the flows really ran compiled code
    assert pure.pop("risk_module").endswith(".py")
    assert (compiled.pop("build"), pure.pop("build")) == ("mypyc", "interpreted")
    assert compiled == pure
