"""Streaming decoders for request bodies and encoders for responses (HTTP Content-Encoding).

Request bodies may be made of several concatenated compressed frames (clickhouse-connect sends
one lz4 frame per insert block), so every decoder restarts on the bytes left after a frame ends;
decoding only the first frame would silently lose rows.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import lz4.frame
from backports import zstd

SUPPORTED = ("lz4", "zstd", "gzip", "deflate")


class UnsupportedEncoding(ValueError):
    """The client used a Content-Encoding this endpoint does not implement."""


OUTPUT_STEP = 1 << 20
"""Most bytes one decompression step yields: a small compressed chunk can expand a thousandfold
(a gzip bomb), so output is produced in steps and the reader can stop at its limit."""


class _FrameDecoder(Protocol):
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...


class _Zlib:
    """Adapter giving zlib decompress objects the eof/needs_input/unused_data shape of the others."""

    def __init__(self, wbits: int):
        self._obj = zlib.decompressobj(wbits)
        self._full = False

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._obj.decompress(self._obj.unconsumed_tail + data, max(max_length, 0))
        self._full = 0 < max_length <= len(out)
        return out

    @property
    def eof(self) -> bool:
        return self._obj.eof

    @property
    def needs_input(self) -> bool:
        return not self._obj.unconsumed_tail and not self._full

    @property
    def unused_data(self) -> bytes:
        return self._obj.unused_data


_DECODERS: dict[str, Callable[[], _FrameDecoder]] = {
    "lz4": lz4.frame.LZ4FrameDecompressor,
    "zstd": zstd.ZstdDecompressor,
    "gzip": lambda: _Zlib(31),
    "x-gzip": lambda: _Zlib(31),
    "deflate": lambda: _Zlib(15),
}


def decode_stream(chunks: Iterable[bytes], encoding: str | None) -> Iterator[bytes]:
    """Decompress a body given as chunks, across any number of concatenated frames.

    Each yielded piece is at most :data:`OUTPUT_STEP` bytes, whatever the compression ratio. An
    unknown encoding raises :class:`UnsupportedEncoding` here, before the body is read.
    """
    name = (encoding or "").strip().lower()
    if name in ("", "identity"):
        return (c for c in chunks if c)
    factory = _DECODERS.get(name)
    if factory is None:
        raise UnsupportedEncoding(f"Unknown Content-Encoding {encoding!r}; supported: {', '.join(SUPPORTED)}")
    return _decode(chunks, factory, name)


def _decode(chunks: Iterable[bytes], factory: Callable[[], _FrameDecoder], name: str) -> Iterator[bytes]:
    decoder: _FrameDecoder | None = None
    for chunk in chunks:
        while True:
            if decoder is None:
                if not chunk:
                    break
                decoder = factory()
            try:
                out = decoder.decompress(chunk, OUTPUT_STEP)
            except Exception as exc:  # each library has its own error type (RuntimeError, ZstdError, zlib.error)
                raise ValueError(f"Corrupt {name} body: {exc}") from None
            chunk = b""
            if out:
                yield out
            if decoder.eof:
                chunk = decoder.unused_data
                decoder = None
            elif decoder.needs_input:
                break
    if decoder is not None:
        raise ValueError(f"Truncated {name} body: the last compressed frame is incomplete")


class Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Lz4Encoder:
    def __init__(self) -> None:
        self._obj = lz4.frame.LZ4FrameCompressor()
        self._header = self._obj.begin()

    def compress(self, data: bytes) -> bytes:
        out = self._header + self._obj.compress(data)
        self._header = b""
        return out

    def flush(self) -> bytes:
        out = self._header + self._obj.flush()
        self._header = b""
        return out


class _ZstdEncoder:
    def __init__(self) -> None:
        self._obj = zstd.ZstdCompressor()

    def compress(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        return self._obj.flush()


_ENCODERS: dict[str, Callable[[], Encoder]] = {
    "lz4": _Lz4Encoder,
    "zstd": _ZstdEncoder,
    "gzip": lambda: zlib.compressobj(3, zlib.DEFLATED, 31),
    "deflate": lambda: zlib.compressobj(3, zlib.DEFLATED, 15),
}


def choose_encoding(accept_encoding: str | None) -> str | None:
    """The first encoding of an Accept-Encoding header this endpoint can produce, or None."""
    for part in (accept_encoding or "").split(","):
        name, _, params = part.strip().lower().partition(";")
        if name in _ENCODERS and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return name
    return None


def encoder(name: str) -> Encoder:
    """A streaming compressor for a name returned by :func:`choose_encoding`."""
    return _ENCODERS[name]()
