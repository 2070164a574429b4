"""Length-prefixed frames and the request/response envelope (sans-IO).

Wire format of every bookchain stream: a sequence of frames, each a 4-byte unsigned
big-endian length followed by that many payload bytes. A fixed-width prefix (rather
than a varint) lets the reader reject an oversized frame after exactly four bytes and
keeps parsing to one ``int.from_bytes``; 4 GiB is far above any limit we allow.

Request/response protocols wrap each payload in an envelope: one kind byte
(request, response, error) and an 8-byte big-endian request id, so many requests can
be in flight on one long-lived stream and responses may come back out of order.

Nothing here does I/O, so the parser is tested directly (including with hypothesis).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

PREFIX_BYTES: Final = 4

KIND_REQUEST: Final = 0
KIND_RESPONSE: Final = 1
KIND_ERROR: Final = 2
_PREFIX = struct.Struct(">I")
_ENVELOPE = struct.Struct(">BQ")
ENVELOPE_BYTES: Final = _ENVELOPE.size
MAX_REQUEST_ID: Final = (1 << 64) - 1


class FrameTooLarge(Exception):
    """A length prefix announced more bytes than the protocol allows."""

    def __init__(self, declared: int, limit: int) -> None:
        super().__init__(f"frame of {declared} bytes exceeds the limit of {limit}")
        self.declared = declared
        self.limit = limit


class FrameError(Exception):
    """A frame is well delimited but its envelope is malformed."""


def prefix(length: int) -> bytes:
    """The 4-byte length prefix for a payload of ``length`` bytes."""
    return _PREFIX.pack(length)


def encode_frames(frames: Iterable[bytes]) -> bytes:
    """Concatenate prefixed frames into one buffer (one stream write for many frames)."""
    parts: list[bytes] = []
    for frame in frames:
        parts.append(prefix(len(frame)))
        parts.append(frame)
    return b"".join(parts)


class FrameParser:
    """Incremental parser: ``feed`` bytes as they arrive, collect complete frames.

    The limit is checked as soon as a prefix is complete, before buffering the body, so
    a peer cannot make us hold more than ``max_frame_bytes`` plus one read chunk.
    """

    __slots__ = ("_buf", "_pos", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes <= 0:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame)."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the frames they complete, in order.

        Raises ``FrameTooLarge`` on an oversized prefix; the parser is then unusable
        (the stream must be closed, as there is no way to resynchronise).
        """
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = self._pos
        end = len(buf)
        limit = self.max_frame_bytes
        with memoryview(buf) as view:  # slicing a view copies once, not twice
            while end - pos >= PREFIX_BYTES:
                (length,) = _PREFIX.unpack_from(buf, pos)
                if length > limit:
                    raise FrameTooLarge(length, limit)
                stop = pos + PREFIX_BYTES + length
                if stop > end:
                    break
                frames.append(bytes(view[pos + PREFIX_BYTES : stop]))
                pos = stop
        if pos == end:
            buf.clear()
            pos = 0
        elif pos > 65536 and pos * 2 > end:
            del buf[:pos]
            pos = 0
        self._pos = pos
        return frames


def pack_envelope(kind: int, request_id: int, body: bytes) -> bytes:
    """Envelope a request, response or error body."""
    return _ENVELOPE.pack(kind, request_id) + body


def unpack_envelope(frame: bytes) -> tuple[int, int, bytes]:
    """Split an enveloped frame into ``(kind, request_id, body)``; ``FrameError`` if bad."""
    if len(frame) < ENVELOPE_BYTES:
        raise FrameError(f"envelope of {len(frame)} bytes is shorter than its header")
    kind, request_id = _ENVELOPE.unpack_from(frame)
    if kind not in (KIND_REQUEST, KIND_RESPONSE, KIND_ERROR):
        raise FrameError(f"unknown envelope kind {kind}")
    return kind, request_id, frame[ENVELOPE_BYTES:]
