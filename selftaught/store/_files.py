"""Keeping the run store private to the broker's user, and its text always storable.

Sandboxed jobs run under other uids (or, without bubblewrap, see the host filesystem read-only),
so the runs folder is made 0700 and the database and its WAL and shared-memory files 0600 before
SQLite writes anything: hidden splits' scores, prompts and LM answers stay the broker's. Text from
outside (an LM answer, a stored row) may hold code points UTF-8 cannot carry; ``storable`` repairs
them so a write never raises, and ``decode`` reads any stored bytes back, so no existing row can
make every later open or resume of a run die.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["StorableConnection", "decode", "make_private", "storable"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def make_private(db_path: Path) -> None:
    """Create ``db_path``'s folder (0700) and the database file (0600); tighten existing ones we own."""
    folder = db_path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(folder, 0o700)
    fd = os.open(db_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
    for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), Path(f"{db_path}-journal")):
        _tighten(path, 0o600)


def _tighten(path: Path, mode: int) -> None:
    # Only what we own: a folder given by the user and owned by someone else is theirs to set.
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_uid == os.geteuid() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


def storable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (SQLite refuses them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def decode(data: bytes) -> str:
    """SQLite's text as ``str``; bytes that are not UTF-8 become U+FFFD instead of an error."""
    return data.decode("utf-8", "replace")


def _clean(params: Any) -> Any:
    if isinstance(params, dict):
        return {key: storable(value) if isinstance(value, str) else value for key, value in params.items()}
    return [storable(value) if isinstance(value, str) else value for value in params]


class StorableConnection(sqlite3.Connection):
    """A connection whose writes repair every text parameter with ``storable``: whichever column
    an outside string reaches (a task name, a run message, a finding's detail, a strategy tag),
    a lone surrogate in it cannot make the write raise."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _clean(parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return super().executemany(sql, (_clean(row) for row in parameters))
