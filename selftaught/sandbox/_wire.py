"""Length-prefixed JSON frames: the only format that crosses the sandbox boundary.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. ``FrameReader``
parses frames out of bytes read without blocking (the trusted side reads against deadlines);
``send`` and ``recv`` are the blocking helpers the sandboxed side and the fork server use.
Nothing here ever unpickles or evaluates what it reads; malformed frames raise ``WireError``.

The trusted side reads with a ``FrameReader`` whose limits bound what one frame can cost it:
a frame over ``limit`` bytes, or whose JSON would hold more than ``max_items`` values (a 16 MB
frame of nested empty lists would otherwise become about 385 MB of Python lists), is not parsed
at all: its bytes are skipped as they arrive and it comes out as an ``Oversized`` marker that
keeps only the first bytes, so the caller can refuse that one message and carry on.
This module imports only the standard library, because it runs inside sandboxes.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_FRAME_BYTES", "FrameReader", "Oversized", "WireError", "count_items", "encode", "recv", "send"]

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


@dataclass(frozen=True)
class Oversized:
    """A frame that was refused unparsed: its size, why, and its first bytes (to tell its kind)."""

    size: int
    reason: str
    head: bytes

    def kind(self) -> str:
        """The ``t`` field the frame appears to start with (``call``, ``result``...), or ""."""
        match = re.match(rb'\s*\{\s*"t"\s*:\s*"([a-z]{1,16})"', self.head)
        return match.group(1).decode() if match else ""


_ITEM_MARKS = (b"[", b"{", b",", b":")


def count_items(body: bytes) -> int:
    """An upper bound on the values a JSON text holds: every container and separator counts.

    Bytes inside strings count too, so this over-counts text heavy in brackets and commas;
    it never under-counts, and it runs at C speed (``bytes.count``).
    """
    return sum(body.count(mark) for mark in _ITEM_MARKS) + 1


def decode(body: bytes) -> Any:
    """Parse one frame body; deep nesting or bad JSON becomes ``WireError``."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"malformed frame: {type(exc).__name__}") from None


class FrameReader:
    """Accumulates bytes and yields complete frames, each parsed or an ``Oversized`` marker.

    ``limit`` bounds one frame's bytes; ``max_items`` bounds the values (``count_items``) all
    frames parsed by this reader may hold together, so what a job's messages cost the reader
    stays bounded however they are split; 0 means no item bound. ``hard_limit`` is the size past which a frame is a
    protocol violation (``WireError``) rather than a refusable message.
    """

    _HEAD_BYTES = 64

    def __init__(self, limit: int = MAX_FRAME_BYTES, max_items: int = 0,
                 hard_limit: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._limit = min(limit, hard_limit)
        self._max_items = max_items
        self._hard_limit = hard_limit
        self._skipping = 0  # bytes of a refused frame still to be discarded
        self._skipped: Oversized | None = None
        self.items = 0
        """Values (as ``count_items`` bounds them) in the frames parsed so far."""

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data``; return every message now complete, in order."""
        messages: list[Any] = []
        view = memoryview(data)
        if self._skipping:
            taken = min(self._skipping, len(view))
            self._skipping -= taken
            view = view[taken:]
            if self._skipping == 0 and self._skipped is not None:
                messages.append(self._skipped)
                self._skipped = None
            if self._skipping:
                return messages
        self._buffer += view
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > self._hard_limit:
                raise WireError(f"frame of {size} bytes exceeds the {self._hard_limit}-byte limit")
            end = _HEADER.size + size
            if size > self._limit:
                head = bytes(self._buffer[_HEADER.size : _HEADER.size + self._HEAD_BYTES])
                refused = Oversized(size, f"a message of {size} bytes exceeds the {self._limit}-byte limit", head)
                if len(self._buffer) >= end:
                    del self._buffer[:end]
                    messages.append(refused)
                    continue
                self._skipping = end - len(self._buffer)
                self._skipped = refused
                self._buffer.clear()
                break
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            items = count_items(body) if self._max_items else 0
            if self._max_items and self.items + items > self._max_items:
                messages.append(Oversized(size, f"a message of up to {items} values would pass the limit of "
                                                f"{self._max_items} values per job", body[: self._HEAD_BYTES]))
                continue
            self.items += items
            messages.append(decode(body))
        return messages

    @property
    def pending(self) -> bool:
        """Whether a partial frame is buffered (EOF now would cut a message)."""
        return bool(self._buffer) or bool(self._skipping)


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
