"""Frame parser and envelope: sans-IO, so checked exhaustively with hypothesis."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.p2p.framing import (
    ENVELOPE_BYTES,
    KIND_ERROR,
    KIND_REQUEST,
    KIND_RESPONSE,
    FrameError,
    FrameParser,
    FrameTooLarge,
    encode_frames,
    pack_envelope,
    prefix,
    unpack_envelope,
)


@given(
    frames=st.lists(st.binary(max_size=300), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_any_split_of_the_byte_stream_yields_the_same_frames(
    frames: list[bytes], cuts: list[int]
) -> None:
    wire = encode_frames(frames)
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    parser = FrameParser(max_frame_bytes=300)
    out: list[bytes] = []
    for start, stop in itertools.pairwise(points):
        out.extend(parser.feed(wire[start:stop]))
    assert out == frames
    assert parser.buffered == 0


def test_oversized_prefix_is_rejected_before_the_body_arrives() -> None:
    parser = FrameParser(max_frame_bytes=1000)
    assert parser.feed(prefix(1000) + b"x" * 10) == []
    parser = FrameParser(max_frame_bytes=1000)
    with pytest.raises(FrameTooLarge) as info:
        parser.feed(prefix(1001))
    assert info.value.declared == 1001


@given(st.binary(max_size=64))
def test_garbage_either_parses_or_raises_frame_too_large(data: bytes) -> None:
    parser = FrameParser(max_frame_bytes=16)
    try:
        frames = parser.feed(data)
    except FrameTooLarge:
        return
    assert all(len(f) <= 16 for f in frames)


def test_large_frames_fed_in_small_chunks_are_reassembled() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    wire = encode_frames([big, b"tail"])
    parser = FrameParser(max_frame_bytes=len(big))
    out: list[bytes] = []
    for i in range(0, len(wire), 65536):
        out.extend(parser.feed(wire[i : i + 65536]))
    assert out == [big, b"tail"]


@given(
    kind=st.sampled_from([KIND_REQUEST, KIND_RESPONSE, KIND_ERROR]),
    request_id=st.integers(min_value=0, max_value=(1 << 64) - 1),
    body=st.binary(max_size=100),
)
def test_envelope_round_trip(kind: int, request_id: int, body: bytes) -> None:
    assert unpack_envelope(pack_envelope(kind, request_id, body)) == (kind, request_id, body)


def test_malformed_envelopes_raise_frame_error() -> None:
    with pytest.raises(FrameError):
        unpack_envelope(b"\x00" * (ENVELOPE_BYTES - 1))
    with pytest.raises(FrameError):
        unpack_envelope(b"\x07" + b"\x00" * 8)
