"""The sandbox's I/O thread: waits, off the caller's path, for the exit of jobs whose results are
all in, and takes the workers' spare offers as they come (``watch``).

A job's last result reaches the caller at once; its process still has to exit (about 0.5-1 ms for
a child of a numpy-importing server, copy-on-write teardown). ``Reaper`` waits for that on one
broker thread for the whole sandbox: on the job's pidfd, which the kernel makes readable once the
process is gone (pid 1 of its namespace, so with every descendant), or, where the worker could not
open one, on the worker's exit report. Until then the job keeps its CPU slot and its worker's
in-flight count (the ``release`` callback frees both), so concurrency limits count exiting jobs
too; the pidfd frees them without waiting for the fork server to be scheduled, reap the job and
write its report. A job still alive ``LINGER_S`` after its last result (its code replaced
``os._exit``, or left a thread writing) is killed; if even the kill goes unseen for
``_KILL_GRACE_S`` (a hung worker), the slot is freed anyway. Nothing learned here changes the
caller's ``Outcome``: the results were complete and the limit counters were read when the last
result arrived. This thread runs no sandboxed code; it only polls descriptors.
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the worker handle uses this module
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
    """The sandbox's one I/O thread: frees each early-returned job's slot once its tree is gone,
    and runs the callbacks of watched descriptors (the workers' spare offers) when they are readable."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pending: dict[int, _Exiting] = {}  # status fd -> job
        self._watched: dict[int, Callable[[], bool]] = {}  # fd -> callback (False: stop watching)
        # epoll, so a job handed over needs no wake-up of this thread: registering its report
        # pipe is enough (the thread looks at deadlines at least every ``_TICK_S``).
        self._epoll = select.epoll()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # for ``stop`` only
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._thread: threading.Thread | None = None
        self._stopping = False

    def hand_over(self, spare: Spare, release: Callable[[], None]) -> None:
        """Take over ``spare`` (results all in): wait for its exit (its pidfd, or else the exit
        report), then close its descriptors
        (closing a socket whose peer lives costs tens of microseconds: not on the caller's path)
        and ``release``."""
        with self._lock:
            if self._stopping:
                spare.close()
                release()
                return
            fd = spare.exit_fd if spare.exit_fd >= 0 else spare.status_read
            self._pending[fd] = _Exiting(spare, release, time.monotonic() + LINGER_S)
            self._register(fd)

    def watch(self, fd: int, callback: Callable[[], bool]) -> None:
        """Call ``callback`` on this thread whenever ``fd`` is readable, until it returns False
        or ``unwatch``; callbacks run under the reaper's lock, so none runs after ``unwatch``."""
        with self._lock:
            if self._stopping:
                return
            self._watched[fd] = callback
            self._register(fd)

    def unwatch(self, fd: int) -> None:
        """Stop watching ``fd`` (before closing it: its number may be reused at once)."""
        with self._lock:
            if self._watched.pop(fd, None) is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(fd)

    def _register(self, fd: int) -> None:
        try:
            self._epoll.register(fd, select.EPOLLIN)
        except FileExistsError:  # the number of a closed descriptor, reused
            self._epoll.modify(fd, select.EPOLLIN)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="selftaught-sandbox-io", daemon=True)
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
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_write, b"\0")  # the thread need not finish its tick
        if thread is not None:
            thread.join(timeout_s)
        for job in left:
            job.spare.close()
            job.release()
        if thread is None or not thread.is_alive():
            self._epoll.close()
            os.close(self._wake_read)
            os.close(self._wake_write)

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
                for fd in ready & set(self._watched):
                    try:
                        keep = self._watched[fd]()
                    except Exception:  # this thread must outlive any callback: drop that one
                        keep = False
                    if not keep:
                        self.unwatch(fd)
            for fd in fds:
                self._check(fd, fd in ready, now)

    def _check(self, fd: int, readable: bool, now: float) -> None:
        with self._lock:
            job = self._pending.get(fd)
            if job is None:
                return
            if readable and fd == job.spare.exit_fd:
                done = True  # the pidfd: the process, and with it its whole tree, is gone
            elif readable:
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

