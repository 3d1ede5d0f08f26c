"""Undo a response's ``Content-Encoding`` a bounded piece at a time.

The HTTP library would inflate a compressed body in one piece per network
read, so a few kilobytes on the wire could become gigabytes in memory.
Here every piece handed on is at most ``piece_size`` bytes, however much
the input inflates, so the caller's own limits (event size, body size)
apply before memory is spent. Only the encodings the SDK asks for
(:data:`ACCEPT_ENCODING`) are understood; a corrupt stream raises
:class:`CorruptEncodingError`, which the transport reports as a broken
connection (so a stream resumes or falls back to polling, as for any other
break).
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterable, Iterator, Optional

__all__ = ["ACCEPT_ENCODING", "CorruptEncodingError", "UnsupportedEncodingError", "decoded"]

#: What the SDK sends as ``Accept-Encoding``: the encodings :func:`decoded`
#: can undo within bounds (never ``br`` or ``zstd``, even when the modules
#: that read them happen to be installed).
ACCEPT_ENCODING = "gzip, deflate"

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


class CorruptEncodingError(Exception):
    """The compressed body is not valid gzip or deflate data."""


class UnsupportedEncodingError(Exception):
    """The body uses a ``Content-Encoding`` the SDK did not ask for."""


def decoded(pieces: Iterable[bytes], content_encoding: Optional[str], piece_size: int) -> Iterator[bytes]:
    """The decoded body, in pieces of at most ``piece_size`` bytes when it was
    compressed (an identity body passes through as it came).

    :raises UnsupportedEncodingError: at once, for an encoding other than
        identity, gzip or deflate (or a chain of several).
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return iter(pieces)
    if encoding in ("gzip", "x-gzip"):
        return _inflated(pieces, lambda _first: zlib.decompressobj(_GZIP), piece_size, members=True)
    if encoding == "deflate":
        # "deflate" is meant to be zlib-wrapped, but some servers send raw
        # deflate data; the first byte tells them apart (a zlib header's
        # low nibble is 8, the deflate method).
        return _inflated(
            pieces,
            lambda first: zlib.decompressobj(_ZLIB if first[0] & 0x0F == 8 else _RAW_DEFLATE),
            piece_size,
            members=False,
        )
    raise UnsupportedEncodingError(content_encoding)


def _inflated(
    pieces: Iterable[bytes], make: Callable[[bytes], Any], piece_size: int, *, members: bool
) -> Iterator[bytes]:
    """Inflate ``pieces``; ``members``: a finished stream may be followed by
    another one (gzip's concatenated members)."""
    inflater = None
    try:
        for piece in pieces:
            data = piece
            # max_length bounds each output; the input that did not fit stays
            # in unconsumed_tail and is fed again.
            while data:
                if inflater is None or (inflater.eof and members):
                    inflater = make(data)
                elif inflater.eof:
                    break  # bytes after the end of a deflate stream: ignored
                out = inflater.decompress(data, piece_size)
                data = inflater.unconsumed_tail or (inflater.unused_data if inflater.eof else b"")
                if out:
                    yield out
        if inflater is None:
            return
        while not inflater.eof:
            out = inflater.decompress(b"", piece_size)
            if not out:
                raise CorruptEncodingError("the compressed body ended before its end marker")
            yield out
    except zlib.error as exc:
        raise CorruptEncodingError(str(exc)) from None
