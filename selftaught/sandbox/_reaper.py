"""Waits, off the caller's path, for the exit of jobs whose results are all in.

A job's last result reaches the caller at once; its process still has to exit (about 0.5-1 ms for
a child of a numpy-importing server, copy-on-write teardown) and the fork server has to reap it,
wipe its scratch dir and report. ``Reaper`` waits for that report on one broker thread for the
whole sandbox. Until it comes the job keeps its CPU slot and its worker's in-flight count (the
``release`` callback frees both), so concurrency limits count exiting jobs too. A job still alive
``LINGER_S`` after its last result (its code replaced ``os._exit``, or left a thread writing) is
killed; if even the kill goes unreported for ``_KILL_GRACE_S`` (a hung worker), the slot is freed
anyway. What the report says arrives after the caller's ``Outcome`` and changes nothing in it: the
results were complete and the limit counters were read when the last result arrived.
This thread runs no sandboxed code; it only reads the server's reports.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from selftaught.sandbox._worker_handle import Spare

__all__ = ["LINGER_S", "Reaper"]

LINGER_S = 1.0
"""How long a job may take to exit after its last result before it is killed."""
_KILL_GRACE_S = 10.0
_TICK_S = 0.25  # the longest the thread sleeps without looking at deadlines


@dataclass
class _Exiting:
    spare: Spare
    release: Callable[[], None]
    deadline: float
    killed: bool = False


class Reaper:
    """One thread per sandbox that frees each early-returned job's slot once its tree is gone."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pending: dict[int, _Exiting] = {}  # status fd -> job
        # epoll, so a job handed over needs no wake-up of this thread: registering its report
        # pipe is enough (the thread looks at deadlines at least every ``_TICK_S``).
        self._epoll = select.epoll()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def hand_over(self, spare: Spare, release: Callable[[], None]) -> None:
        """Take over ``spare`` (results all in): close its channels, wait for its exit, then ``release``."""
        spare.sock.close()
        if spare.out_read >= 0:
            os.close(spare.out_read)
            spare.out_read = -1
        with self._lock:
            if self._stopping:
                spare.close()
                release()
                return
            self._pending[spare.status_read] = _Exiting(spare, release, time.monotonic() + LINGER_S)
            try:
                self._epoll.register(spare.status_read, select.EPOLLIN)
            except FileExistsError:  # the number of a closed pipe, reused
                self._epoll.modify(spare.status_read, select.EPOLLIN)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="selftaught-sandbox-reaper", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every handed-over job is reported gone; whether that happened in time."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._pending, timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Wait a while for outstanding exits (the workers are stopped by now), then free the rest."""
        self.wait_idle(timeout_s)
        with self._lock:
            self._stopping = True
            left, self._pending = list(self._pending.values()), {}
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        for job in left:
            job.spare.close()
            job.release()
        if thread is None or not thread.is_alive():
            self._epoll.close()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                nearest = min((job.deadline for job in self._pending.values()), default=math.inf)
            timeout = min(_TICK_S, max(0.0, nearest - time.monotonic()))
            try:
                events = self._epoll.poll(timeout)
            except OSError:  # closed under us (only at shutdown)
                return
            ready = {fd for fd, _ in events}
            now = time.monotonic()
            with self._lock:
                fds = list(self._pending)
            for fd in fds:
                self._check(fd, fd in ready, now)

    def _check(self, fd: int, readable: bool, now: float) -> None:
        with self._lock:
            job = self._pending.get(fd)
            if job is None:
                return
            if readable:
                try:
                    os.read(fd, 4096)  # the report (one write) or EOF: either way the tree is gone
                    done = True
                except BlockingIOError:
                    done = False
                except OSError:
                    done = True
            else:
                done = job.killed and now >= job.deadline  # the kill was never reported: give up
            if not done:
                if now >= job.deadline and not job.killed:
                    job.killed, job.deadline = True, now + _KILL_GRACE_S
                    job.spare.worker.kill(job.spare.number)
                return
            del self._pending[fd]
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)
            job.spare.close()
            job.release()
            self._lock.notify_all()

