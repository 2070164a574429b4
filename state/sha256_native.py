"""OpenSSL's SHA-256 for the state tree's C code (state/_merkle.c), from the libcrypto that
Python's own hashlib loaded: the same library ``hashlib.sha256`` runs, with no headers or
link step at build time. Returns None where it cannot be found (a hashlib built without
OpenSSL, or an OpenSSL built without the deprecated one-call-per-step API); the tree then
runs its Python reference, which computes the same roots."""

from __future__ import annotations

import ctypes

_NAMES = ("SHA256_Init", "SHA256_Update", "SHA256_Final", "SHA256_Transform")


def sha256_functions() -> tuple[int, int, int, int] | None:
    try:
        import _hashlib

        lib = ctypes.CDLL(_hashlib.__file__)
        addresses = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in _NAMES]
    except (ImportError, OSError, AttributeError):
        return None
    if not all(addresses):
        return None
    a, b, c, d = (address or 0 for address in addresses)
    return a, b, c, d
