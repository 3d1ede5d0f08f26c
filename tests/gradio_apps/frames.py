"""Websocket frames (RFC 6455), as much of them as Gradio 3's queue uses:
text, close, ping and pong frames, masked or not, whole or in fragments
(no extensions).

Shared by the loopback websocket app of tests/test_gradio_websocket.py and
by the recording proxy and replay server of transcripts.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from typing import List, NamedTuple, Optional, Tuple

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` answer to a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def upgrade_answer(key: str) -> bytes:
    """The ``101 Switching Protocols`` response head to an upgrade request with ``key``."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    ).encode()


def _unmask(payload: bytes, mask: bytes) -> bytes:
    size = len(payload)
    keys = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keys, "big")).to_bytes(size, "big")


def encode(opcode: int, payload: bytes, masked: bool = False) -> bytes:
    """One final frame; ``masked`` as a client must send it."""
    size = len(payload)
    flag = 0x80 if masked else 0
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, flag | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, flag | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, flag | 127, size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + _unmask(payload, mask)


def close_frame(code: int = 1000, masked: bool = False) -> bytes:
    """A close frame with a status ``code``."""
    return encode(CLOSE, struct.pack("!H", code), masked)


class Frame(NamedTuple):
    """A message (its fragments joined) or a control frame, unmasked."""

    opcode: int
    payload: bytes

    def text(self) -> Optional[str]:
        """The text of a text message; ``None`` for any other frame."""
        return self.payload.decode("utf-8") if self.opcode == TEXT else None


class FrameParser:
    """Cuts a byte stream, fed in pieces of any size, into :class:`Frame` s."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fragments: List[bytes] = []
        self._first_opcode = CONTINUATION

    def feed(self, data: bytes) -> List[Frame]:
        """The frames that ``data`` completes, in order."""
        self._buffer += data
        frames: List[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Optional[Frame]:
        while True:
            cut = self._cut()
            if cut is None:
                return None
            final, opcode, payload = cut
            if opcode >= CLOSE:  # control frames come whole, even between fragments
                return Frame(opcode, payload)
            if opcode != CONTINUATION:
                self._first_opcode = opcode
            self._fragments.append(payload)
            if final:
                message = Frame(self._first_opcode, b"".join(self._fragments))
                self._fragments = []
                return message

    def _cut(self) -> Optional[Tuple[bool, int, bytes]]:
        """The first whole frame of the buffer, taken off it: (final, opcode, payload)."""
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        size, start = buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size, start = struct.unpack_from("!H", buffer, 2)[0], 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
        masked = bool(buffer[1] & 0x80)
        end = start + (4 if masked else 0) + size
        if len(buffer) < end:
            return None
        payload = bytes(buffer[end - size : end])
        if masked:
            payload = _unmask(payload, bytes(buffer[start : start + 4]))
        final, opcode = bool(buffer[0] & 0x80), buffer[0] & 0x0F
        del buffer[:end]
        return final, opcode, payload
