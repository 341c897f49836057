"""Request body decoding and response encoding of the local ClickHouse endpoint (no server)."""

from __future__ import annotations

import gzip
import io
import zlib

import lz4.frame
import pytest
from backports import zstd
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.chdb_server.body import BadRequestBody, Rechunker, iter_body
from billing.chdb_server.codec import UnsupportedEncoding, choose_encoding, decode_stream, encoder

COMPRESSORS = {
    "lz4": lz4.frame.compress,
    "zstd": zstd.compress,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}

_frames = st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=6)


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("encoding", sorted(COMPRESSORS))
@settings(max_examples=40, deadline=None)
@given(frames=_frames, piece=st.integers(min_value=1, max_value=5000))
def test_every_concatenated_frame_is_decoded(encoding: str, frames: list[bytes], piece: int) -> None:
    body = b"".join(COMPRESSORS[encoding](frame) for frame in frames)
    assert b"".join(decode_stream(_split(body, piece), encoding)) == b"".join(frames)


def test_multi_frame_lz4_body_from_insert_blocks_keeps_every_row() -> None:
    blocks = [bytes([n]) * 100_000 for n in range(10)]
    body = b"".join(lz4.frame.compress(block) for block in blocks)
    decoded = b"".join(decode_stream(_split(body, 8192), "lz4"))
    assert len(decoded) == 1_000_000 and decoded[-1] == 9


def test_truncated_frame_is_an_error() -> None:
    body = lz4.frame.compress(b"x" * 10_000)
    with pytest.raises(ValueError, match="incomplete"):
        list(decode_stream([body[:-5]], "lz4"))


@pytest.mark.parametrize("encoding", sorted(COMPRESSORS))
def test_corrupt_bodies_are_value_errors(encoding: str) -> None:
    body = bytearray(COMPRESSORS[encoding](bytes(range(256)) * 50))
    body[len(body) // 2] ^= 0xFF
    body[4:8] = b"\xff\xff\xff\xff"
    with pytest.raises(ValueError):
        list(decode_stream([bytes(body)], encoding))


def test_unknown_encoding_is_rejected() -> None:
    with pytest.raises(UnsupportedEncoding):
        list(decode_stream([b"x"], "compress"))


def test_identity_passes_through() -> None:
    assert list(decode_stream([b"a", b"", b"b"], None)) == [b"a", b"b"]


@pytest.mark.parametrize("name", ["lz4", "zstd", "gzip", "deflate"])
@given(parts=st.lists(st.binary(max_size=2000), max_size=5))
def test_response_encoders_round_trip(name: str, parts: list[bytes]) -> None:
    enc = encoder(name)
    body = b"".join(enc.compress(p) for p in parts) + enc.flush()
    assert b"".join(decode_stream([body], name)) == b"".join(parts)


def test_accept_encoding_negotiation() -> None:
    assert choose_encoding("lz4") == "lz4"
    assert choose_encoding("br, gzip;q=0.5, zstd") == "gzip"
    assert choose_encoding("br, zstd;q=0") is None
    assert choose_encoding(None) is None


def test_chunked_body_framing() -> None:
    raw = io.BytesIO(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    assert b"".join(iter_body(raw, None, "chunked")) == b"hello world"
    with pytest.raises(BadRequestBody):
        list(iter_body(io.BytesIO(b"zz\r\n"), None, "chunked"))
    with pytest.raises(BadRequestBody):
        list(iter_body(io.BytesIO(b"abc"), "10", None))


def test_rechunker_reads_a_head_then_the_rest() -> None:
    reader = Rechunker(iter([b"abc", b"def", b"ghi"]))
    head = reader.read_until(bytearray(), 4)
    assert bytes(head) == b"abcdef" and not reader.eof
    assert b"".join(reader.rest()) == b"ghi" and reader.eof
