"""Consensus's own error: bytes from a peer or the WAL that are not a valid message.

Consensus decoders build on ``state.codec`` (the same strict canonical msgpack as
transactions), whose checks raise ``TxError``; a malformed vote or block is not a rejected
transaction, so every public decoder here turns those into ``MalformedMessage`` at its
boundary (``decoder``), and callers catch one consensus error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from state.errors import Code, TxError

P = ParamSpec("P")
R = TypeVar("R")


class MalformedMessage(ValueError):
    """Bytes that do not decode to a valid consensus message or WAL record; ``code`` says
    which kind of codec check failed (``OVERSIZE``, ``MALFORMED``)."""

    def __init__(self, message: str, code: Code = Code.MALFORMED) -> None:
        super().__init__(message)
        self.code = code


def decoder(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a public decoder: a codec rejection becomes ``MalformedMessage``."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except TxError as err:
            raise MalformedMessage(err.message, err.code) from None

    return wrapped
