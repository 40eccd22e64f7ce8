"""Whether the broker of a ``running`` run is still alive: its pid, host and a heartbeat.

The broker claims a run when it starts or resumes it (``RunStore.claim``: pid, host, time) and a
``Heartbeat`` thread refreshes the time every ``BEAT_EVERY_S``. A reader calls ``broker_state``
(in ``records``, so the dashboard can use it without the store). A run whose broker died is shown as
``interrupted``; nothing is written by the reader, and ``selftaught resume`` continues it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from selftaught.records import STALE_AFTER_S, broker_state

__all__ = ["BEAT_EVERY_S", "STALE_AFTER_S", "Heartbeat", "broker_state", "this_host"]

BEAT_EVERY_S = 10.0


def this_host() -> str:
    return socket.gethostname()


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
