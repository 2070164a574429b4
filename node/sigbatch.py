"""Signature verification for a node's verification threads, a batch per GIL release.

Why: PyNaCl releases the GIL around each verification and takes it back afterwards. In a
node, the main thread holds the GIL while it executes blocks, so every one of those
re-acquisitions waits for the interpreter's switch interval and forces a thread switch.
Measured on the 2-core machine (20,000 verifications on two threads while a third thread
runs Python): per-call verification took 103 µs of CPU per signature instead of 61 and
1.5 ms of wall time per signature instead of 33 µs; the same work through this module took
61 µs of CPU and 66 µs of wall time.

``verify_many`` hands a whole batch to the small C extension ``node._sigbatch``, which
checks it with the GIL released once, and checks it as a batch: one multi-scalar
multiplication for up to 64 signatures (node/_edcurve.c), under the chain's signature rule
(state/sigrule.py, the cofactored equation that makes batching sound). Measured on the
2-core machine: ~14 µs per signature (17.5 when every key is new) against libsodium's
~41 µs one at a time. A batch that fails is re-checked one signature at a time, so one bad
signature never fails a good one. The extension takes libsodium's SHA-512 and scalar arithmetic from the libsodium
PyNaCl loaded. It is built at install when a C compiler is present; without it,
``verify_many`` falls back to ``state.keys.verify_each``, which gives the same answers one
call at a time (tests compare them on honest, forged and crafted signatures).
``backend()`` says which one runs (``/status`` reports it).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Sequence

from state.keys import SigItem, verify_each

log = logging.getLogger("bookchain.sigbatch")

ABI = 2  # must equal SIGBATCH_ABI in _sigbatch.c: a stale build is not used

_SODIUM_FUNCTIONS = ("crypto_hash_sha512", "crypto_core_ed25519_scalar_reduce", "crypto_core_ed25519_scalar_mul",
                     "crypto_core_ed25519_scalar_add", "crypto_core_ed25519_scalar_negate")


def _native() -> Callable[[Sequence[SigItem]], list[bool]] | None:
    try:
        from node import _sigbatch  # type: ignore[attr-defined]
    except ImportError:
        return None
    if getattr(_sigbatch, "ABI", None) != ABI:
        log.warning("node._sigbatch is a stale build (ABI %s, want %s): verifying one call at a time; "
                    "reinstall the project to rebuild it", getattr(_sigbatch, "ABI", None), ABI)
        return None
    try:
        import nacl._sodium as sodium_module

        lib = ctypes.CDLL(sodium_module.__file__)
        addresses = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in _SODIUM_FUNCTIONS]
    except (ImportError, OSError, AttributeError):
        return None
    if not all(addresses):
        return None
    try:
        _sigbatch.configure(*addresses)
    except (RuntimeError, ValueError) as e:
        log.warning("node._sigbatch did not start (%s): verifying one call at a time", e)
        return None
    batch = _sigbatch.verify_many

    def verify_many(items: Sequence[SigItem]) -> list[bool]:
        return [ok == 1 for ok in batch(items)]

    return verify_many


_NATIVE = _native()


def backend() -> str:
    """``"batch"`` when the native batch verifier runs, ``"per-call"`` otherwise."""
    return "batch" if _NATIVE is not None else "per-call"


def verify_many(items: Sequence[SigItem]) -> list[bool]:
    """Verify (signature, message, public key) items; same answers as ``state.keys.verify``."""
    if _NATIVE is not None:
        return _NATIVE(items)
    return verify_each(items)
