"""Length-prefixed JSON frames: the only format that crosses the sandbox boundary.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. ``FrameReader``
parses frames out of bytes read without blocking (the trusted side reads against deadlines);
``send`` and ``recv`` are the blocking helpers the sandboxed side and the fork server use.
Nothing here ever unpickles or evaluates what it reads; oversized or malformed frames raise
``WireError``. This module imports only the standard library, because it runs inside sandboxes.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

__all__ = ["MAX_FRAME_BYTES", "FrameReader", "WireError", "encode", "recv", "send"]

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""Largest frame either side accepts; a bigger one is a protocol violation."""

_HEADER = struct.Struct(">I")


class WireError(Exception):
    """A frame was too big, not JSON, or the stream ended inside one."""


def encode(message: Any) -> bytes:
    """One frame holding ``message``; NaN and infinities are kept (Python's JSON dialect)."""
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME_BYTES:
        raise WireError(f"message of {len(body)} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> Any:
    """Parse one frame body; deep nesting or bad JSON becomes ``WireError``."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"malformed frame: {type(exc).__name__}") from None


class FrameReader:
    """Accumulates bytes and yields complete frames; refuses frames over ``limit`` bytes."""

    def __init__(self, limit: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data``; return every message now complete, in order."""
        self._buffer += data
        messages: list[Any] = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > self._limit:
                raise WireError(f"frame of {size} bytes exceeds the {self._limit}-byte limit")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            messages.append(decode(body))
        return messages

    @property
    def pending(self) -> bool:
        """Whether a partial frame is buffered (EOF now would cut a message)."""
        return bool(self._buffer)


def send(sock: socket.socket, message: Any) -> None:
    """Write one frame, blocking until it is fully sent."""
    sock.sendall(encode(message))


def recv(sock: socket.socket) -> Any:
    """Read one frame, blocking; ``EOFError`` when the peer closed between frames."""
    header = _read_exactly(sock, _HEADER.size, allow_eof=True)
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise WireError(f"frame of {size} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return decode(_read_exactly(sock, size, allow_eof=False))


def _read_exactly(sock: socket.socket, size: int, *, allow_eof: bool) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            if allow_eof and not chunks:
                raise EOFError("peer closed the connection")
            raise WireError("stream ended inside a frame")
        chunks += chunk
    return bytes(chunks)
