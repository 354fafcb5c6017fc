"""The frame codec, including a hypothesis fuzz test of the decoder."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cinema.remote import FrameDecoder, FrameTooLarge, ProtocolError, encode_frame
from cinema.remote._wire import parse_frame

frames = st.lists(st.binary(max_size=300), max_size=20)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(frames, st.lists(st.integers(min_value=0), max_size=30))
def test_frames_survive_any_chunking(payloads: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(max_frame_size=300)
    out: list[bytes] = []
    for chunk in split(wire, cuts):
        decoder.feed(chunk)
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
    assert out == payloads
    assert decoder.buffered == 0


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=10))
def test_garbage_yields_frames_or_frame_too_large_only(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_frame_size=64)
    refused: FrameTooLarge | None = None
    try:
        for chunk in split(data, cuts):
            decoder.feed(chunk)
            while (frame := decoder.next_frame()) is not None:
                assert len(frame) <= 64
    except FrameTooLarge as exc:
        refused = exc
    if refused is not None:
        assert refused.size > 64
    assert decoder.buffered <= len(data)


@given(st.binary(max_size=500))
def test_parse_frame_raises_only_protocol_error(data: bytes) -> None:
    try:
        frame = parse_frame(data)
    except ProtocolError:
        return
    assert frame.WhichOneof("body") is not None


def test_oversized_header_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    with pytest.raises(FrameTooLarge, match="4294967295 bytes exceeds the limit of 1024"):
        decoder.feed(struct.pack(">I", 0xFFFFFFFF))


def test_encode_refuses_oversized_frames() -> None:
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 11, max_frame_size=10)


def test_partial_frames_wait_for_more() -> None:
    decoder = FrameDecoder()
    wire = encode_frame(b"hello")
    decoder.feed(wire[:3])
    assert decoder.next_frame() is None
    decoder.feed(wire[3:7])
    assert decoder.next_frame() is None
    decoder.feed(wire[7:])
    assert decoder.next_frame() == b"hello"


def test_limit_must_fit_the_header() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(max_frame_size=2**32)
