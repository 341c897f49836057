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


class _FrameDecoder(Protocol):
    def decompress(self, data: bytes) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...


class _Zlib:
    """Adapter giving zlib decompress objects the eof/unused_data shape of the other decoders."""

    def __init__(self, wbits: int):
        self._obj = zlib.decompressobj(wbits)

    def decompress(self, data: bytes) -> bytes:
        return self._obj.decompress(data)

    @property
    def eof(self) -> bool:
        return self._obj.eof

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
    """Decompress a body given as chunks, across any number of concatenated frames."""
    name = (encoding or "").strip().lower()
    if name in ("", "identity"):
        yield from (c for c in chunks if c)
        return
    factory = _DECODERS.get(name)
    if factory is None:
        raise UnsupportedEncoding(f"Unknown Content-Encoding {encoding!r}; supported: {', '.join(SUPPORTED)}")
    decoder: _FrameDecoder | None = None
    for chunk in chunks:
        while chunk:
            if decoder is None:
                decoder = factory()
            try:
                out = decoder.decompress(chunk)
            except Exception as exc:  # each library has its own error type (RuntimeError, ZstdError, zlib.error)
                raise ValueError(f"Corrupt {name} body: {exc}") from None
            if out:
                yield out
            if decoder.eof:
                chunk = decoder.unused_data
                decoder = None
            else:
                chunk = b""
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
