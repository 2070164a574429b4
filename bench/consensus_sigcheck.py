"""What a peer's signatures cost consensus's checks, by verifier: runs of the chain rule in
plain Python (state/sigrule.py) and wall time.

    python -m bench.consensus_sigcheck [--repeat 5]

Cases: a proposed block's evidence (16 pieces, every signature valid under the rule and
rejected by libsodium: crafted with a torsion component, which takes the validator's key),
and a forged certificate of 100 validators (well-formed signatures of another message).
Verifiers: ``state.keys.valid_prefix`` (the default; what the core, certificates and block
evidence used before a node passed its own), ``node.sigbatch.valid_prefix`` with the
compiled extension ("batch"), and without it ("per-call", the first check and a repeat of
the same input, which its cache of the rule's answers serves).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from node import sigbatch
from state import keys, sigrule
from state.keys import PrefixVerifier

_calls = [0]
_real_rule = sigrule.verify


def _counting(pubkey: bytes, message: bytes, signature: bytes) -> bool:
    _calls[0] += 1
    return _real_rule(pubkey, message, signature)


def _measure(check: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(ms per check, rule runs per check), each check from an empty rule cache."""
    total = 0.0
    _calls[0] = 0
    for _ in range(repeat):
        sigbatch._rule_answers.clear()
        t0 = time.perf_counter()
        check()
        total += time.perf_counter() - t0
    return total * 1000 / repeat, _calls[0] / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from consensus.evidence import check_block_evidence
    from tests.consensus.helpers import CHAIN, VALSET
    from tests.node.test_consensus_sigcost import (
        BIG_SET,
        EV_HEIGHT,
        crafted_evidence,
        forged_certificate,
    )

    raw = crafted_evidence()
    cert = forged_certificate(5, b"\x01" * 32)
    native = sigbatch._NATIVE
    sigrule.verify = _counting  # type: ignore[assignment]
    cases: list[tuple[str, Callable[[PrefixVerifier], object]]] = [
        ("block, 16 crafted evidence pieces", lambda v: check_block_evidence(raw, EV_HEIGHT, VALSET, CHAIN, verifier=v)),
        ("certificate, 100 forged signatures", lambda v: cert.verify(BIG_SET, CHAIN, v)),
    ]
    print(f"{'case':38} {'verifier':22} {'ms/check':>9} {'rule runs':>9}")
    for name, case in cases:
        rows: list[tuple[str, PrefixVerifier, bool]] = [("default (keys)", keys.valid_prefix, True)]
        if native is not None:
            rows.append(("node, batch", sigbatch.valid_prefix, True))
        rows += [("node, per-call", sigbatch.valid_prefix, False)]
        for label, verifier, with_native in rows:
            sigbatch._NATIVE = native if with_native else None
            ms, runs = _measure(lambda: case(verifier), args.repeat)  # noqa: B023 - called at once
            print(f"{name:38} {label:22} {ms:9.2f} {runs:9.1f}")
            if not with_native:  # the same input again: the cache answers
                t0 = time.perf_counter()
                _calls[0] = 0
                case(verifier)
                print(f"{name:38} {'node, per-call, again':22} {(time.perf_counter() - t0) * 1000:9.2f} {_calls[0]:9.1f}")
    sigbatch._NATIVE = native
    sigrule.verify = _real_rule  # type: ignore[assignment]


if __name__ == "__main__":
    main()
