"""Whether the broker of a ``running`` run is still alive: its pid, host and a heartbeat.

The broker claims a run when it starts or resumes it (``RunStore.claim``: pid, host, time) and a
``Heartbeat`` thread refreshes the time every ``BEAT_EVERY_S``. A reader calls ``broker_state``:
on the broker's own host a missing pid settles it at once; from elsewhere (or when the pid was
reused) a heartbeat older than ``STALE_AFTER_S`` does. A run whose broker died is shown as
``interrupted``; nothing is written by the reader, and ``selftaught resume`` continues it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["BEAT_EVERY_S", "STALE_AFTER_S", "Heartbeat", "broker_state", "this_host"]

BEAT_EVERY_S = 10.0
STALE_AFTER_S = 90.0
"""A heartbeat older than this means the broker is gone (nine missed beats: load cannot explain it)."""


def this_host() -> str:
    return socket.gethostname()


def broker_state(status: str, pid: int | None, host: str, heartbeat_at: float | None,
                 now: float | None = None) -> str:
    """``status``, or ``interrupted`` when it says ``running`` but the broker is gone."""
    if status != "running":
        return status
    now = time.time() if now is None else now
    if heartbeat_at is not None and now - heartbeat_at > STALE_AFTER_S:
        return "interrupted"
    if pid is not None and host == this_host() and not _pid_alive(pid):
        return "interrupted"
    return status


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process holds the pid
    return True


class Heartbeat:
    """A daemon thread calling ``beat()`` every ``every_s`` seconds until ``stop()``."""

    def __init__(self, beat: Callable[[], None], every_s: float = BEAT_EVERY_S) -> None:
        self._beat = beat
        self._every_s = every_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="selftaught-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stopped.wait(self._every_s):
            try:
                self._beat()
            except Exception:  # a busy or closed store: the next beat tries again
                continue
