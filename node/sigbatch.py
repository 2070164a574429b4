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
``verify_many`` answers one call at a time with ``state.keys.verify``'s answers, by the same
steps (``state.keys.verify_by`` and ``prefix_by`` with the cached rule below; tests
compare them on honest, forged and crafted signatures): libsodium first, and for a
signature libsodium rejects the chain rule in plain Python (state/sigrule.py, 6-17 ms).
``backend()`` says which one runs (``/status`` reports it).

``valid_prefix`` is what consensus is given (``state.keys.PrefixVerifier``: a peer's votes,
proposals, evidence, certificates): it stops at the first invalid signature, with the
extension in chunks doubling from 1 to 64, one at a time without. Without the extension the fast path
is the slow one, so it is kept bounded: the plain-Python rule runs only for signatures
libsodium rejects, and at most once per (public key, message, signature) while the answer
is among the last ``RULE_CACHE_SIZE`` (a block re-proposed with the same crafted evidence,
a vote seen again inside evidence, cost it once); a list of forged signatures costs it
once, at the first; and whoever sent a signature it also rejects is blamed by the caller
(node/driver.py: a bad frame, a block-sync strike).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

from state import sigrule
from state.keys import SigItem, prefix_by, verify_by

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


#: The extension's batch (node/_edcurve.c ``BATCH_MAX``): the most ``valid_prefix`` hands it
#: at a time.
CHUNK: Final = 64
#: Answers of the plain-Python rule kept (per-call backend only): ~100 bytes each.
RULE_CACHE_SIZE: Final = 4096

_rule_answers: OrderedDict[bytes, bool] = OrderedDict()
_rule_lock = threading.Lock()


def _rule(pk: bytes, msg: bytes, sig: bytes) -> bool:
    """The chain rule in plain Python for a signature libsodium rejected, each distinct one
    once while its answer is cached (the answer never changes, so caching it cannot change
    any answer). Keyed by SHA-256 of the item, so a large message costs the cache 32 bytes."""
    key = hashlib.sha256(pk + sig + msg).digest()  # pk and sig have fixed lengths: unambiguous
    with _rule_lock:
        answer = _rule_answers.get(key)
        if answer is not None:
            _rule_answers.move_to_end(key)
            return answer
    answer = sigrule.verify(pk, msg, sig)
    with _rule_lock:
        _rule_answers[key] = answer
        while len(_rule_answers) > RULE_CACHE_SIZE:
            _rule_answers.popitem(last=False)
    return answer


def _verify_one(pk: bytes, msg: bytes, sig: bytes) -> bool:
    """``state.keys.verify`` with the rule's answers cached (the per-call backend)."""
    return verify_by(_rule, pk, msg, sig)


def verify_many(items: Sequence[SigItem]) -> list[bool]:
    """Verify (signature, message, public key) items; same answers as ``state.keys.verify``."""
    if _NATIVE is not None:
        return _NATIVE(items)
    return [_verify_one(pk, msg, sig) for sig, msg, pk in items]


def valid_prefix(items: Sequence[SigItem]) -> int:
    """How many of ``items``, from the first, are valid (``state.keys.PrefixVerifier``, the
    answer ``state.keys.valid_prefix`` gives): stops in the first chunk that holds an
    invalid one. Chunks double from 1 to ``CHUNK``, so the chunk that fails is at most one
    longer than the valid ones before it: a failed batch re-checks each of its signatures
    alone (~0.15 ms each), and a certificate of 100 forged signatures cost 10-19 ms in
    chunks of 64, more than the one run of the plain-Python rule it replaces; its first
    signature alone costs ~0.06 ms."""
    if _NATIVE is not None:
        start, size = 0, 1
        while start < len(items):
            answers = _NATIVE(items[start:start + size])
            if not all(answers):
                return start + answers.index(False)
            start += size
            size = min(2 * size, CHUNK)
        return len(items)
    return prefix_by(_verify_one, items)
