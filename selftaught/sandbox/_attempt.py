"""One process of a job, seen from the broker: feed it, time each call, answer its proxy calls.

The process reports its progress in messages (``ready`` after start-up, ``start`` and ``result``
per call), and each phase gets a window: start-up ``Job.startup_timeout_s``, each call and the gap
before it ``Job.call_wall_s()``. A message only opens the window of the next phase (a second
``ready`` or an unexpected ``start`` breaks the protocol), and no window reaches past the job's
deadline, so nothing the process sends buys it time. A call whose window closes is killed with
its process, and the ``Attempt`` says the job should go on in a fresh one. Every read is a
``select`` against the nearest limit, so an orphan holding a pipe open can never hang it.

The process is a spare the worker confined before the job existed; the job goes to it directly.
When the last result (or a start-up ``fail``) arrives, the attempt is over for the caller: the
output written so far is drained, the job's cgroup counters are read, and the reaper waits for the
exit (``_reaper``). Only a process that has to be killed, or died, is waited for here, so that its
exit status can say why.
"""

from __future__ import annotations

import math
import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from selftaught.errors import ProxyError
from selftaught.proxy.calls import reply_error, unpack_call
from selftaught.records import CallResult
from selftaught.sandbox import _wire
from selftaught.sandbox._exit_report import ExitStatus, describe_end
from selftaught.sandbox._worker_handle import Spare

if TYPE_CHECKING:
    from selftaught.sandbox._job_run import JobRun

__all__ = ["Attempt", "AttemptEnd", "Launch"]

Launch = Callable[[float], "Spare | str"]
"""Takes a confined spare from the least busy worker, waiting up to the given seconds; or says why not."""

_EXIT_GRACE_S = 10.0  # how long a finished or killed tree may take to be reported gone
_DRAIN_S = 1.0  # how long to wait for the output pipe's EOF once the tree is gone
_MAX_TEXT = 2000
_RECV_BYTES = 1 << 16  # a larger buffer is a fresh mmap (and munmap) for every read


class _Violation(Exception):
    """The job broke the message protocol; it is killed and the job fails with this reason."""


@dataclass(frozen=True)
class AttemptEnd:
    """How a process ended: ``restart`` when a call failed by being killed and later calls may
    still run; otherwise ``reason`` is why the job failed ("" when it did not)."""

    restart: bool
    reason: str


class Attempt:
    """Runs the job run's job from call ``first`` on in one fresh process."""

    def __init__(self, jobrun: JobRun, first: int) -> None:
        self.jobrun = jobrun
        self.job = jobrun.job
        self.first = first
        self.results: list[CallResult] = []
        self.output = bytearray()
        self.state = "startup"  # startup -> between <-> call -> done
        self.window = 0.0  # when the current phase's time is up
        self.call_started = 0.0
        self.ended = 0.0  # when the conversation stopped (a limit passed, or the process ended)
        self.fail_reason = ""

    @property
    def _total(self) -> int:
        return len(self.job.calls)

    @property
    def _current(self) -> int:
        """1-based number of the call in progress or next."""
        return self.first + len(self.results) + 1

    def run(self) -> AttemptEnd:
        payload = self.jobrun.payload(self.first)
        now = time.monotonic()
        cpu_rlimit_s = math.ceil(max(1.0, self.jobrun.deadline - now)) + 1
        taken = self.jobrun.launch(max(0.001, min(self.jobrun.deadline, now + self.job.startup_timeout_s) - now))
        if isinstance(taken, str):
            return AttemptEnd(False, f"sandbox failure: {taken}")
        spare, worker = taken, taken.worker
        worker.track(+1)
        handed_over = False
        try:
            status = ExitStatus(spare.status_read)
            self.window = time.monotonic() + self.job.startup_timeout_s
            # A CPU-time rlimit for the whole process: a backstop only, as the job's deadline is
            # wall time and ends it first unless it runs several threads.
            header = _wire.encode({"cpu_rlimit_s": cpu_rlimit_s})
            try:
                why = self._converse(spare, status, header + payload)
            except _Violation as exc:
                why = f"protocol violation: {exc}"
            except BaseException:
                self._finish(spare, status, kill=True)
                raise
            self.ended = time.monotonic()
            if not why and (self.state == "done" or self.fail_reason) and not status.ended:
                # Everything the caller gets is in: the exit happens off the caller's path.
                self._drain(spare.out_read)
                self._add_limits(self._cgroup_counters(spare))
                self.jobrun.hand_over(spare)
                handed_over = True
                return self._conclude(why, status)
            self._finish(spare, status, kill=bool(why) or self.state != "done")
            self._add_limits(status.limited)
            return self._conclude(why, status, cpu_rlimit_s)
        finally:
            if not handed_over:
                worker.track(-1)
                spare.close()

    def _add_limits(self, limited: dict[str, int]) -> None:
        for key, count in limited.items():
            self.jobrun.limited[key] = self.jobrun.limited.get(key, 0) + count

    @staticmethod
    def _cgroup_counters(spare: Spare) -> dict[str, int]:
        """What the job's cgroup limits did so far (OOM kills of its children, refused forks)."""
        cgroups = spare.worker.cgroups
        return cgroups.events(spare.cgroup, spare.baseline) if cgroups is not None and spare.cgroup else {}

    # --- the conversation -----------------------------------------------------------------------

    def _converse(self, spare: Spare, status: ExitStatus, payload: bytes) -> str:
        """Exchange messages until the results are in, the process ends or a limit passes; the
        return says which limit ("" for none)."""
        sock, out_read = spare.sock, spare.out_read
        sent = self._send_bytes(sock, payload)
        # After the job: the server's replacement work comes second.
        spare.worker.took(spare.number, self.jobrun.slots.full)
        if not sent:
            return self._time_up()
        sizes = self.jobrun.sizes
        reader = _wire.FrameReader(sizes.message_bytes, sizes.job_values)
        watched = [sock.fileno(), out_read, status.fd]
        while True:
            if self.state == "done" or self.fail_reason:
                return ""
            remaining = min(self.window, self.jobrun.deadline) - time.monotonic()
            if remaining <= 0:
                return self._time_up()
            ready, _, _ = select.select(watched, [], [], remaining)
            if out_read in ready and not self._read_output(out_read):
                watched.remove(out_read)
            if status.fd in ready and not status.read():
                watched.remove(status.fd)
            if sock.fileno() in ready:
                try:
                    data = sock.recv(_RECV_BYTES)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    # The process let go of its channel: it is exiting (or closed it itself).
                    # Its exit report says how it ended; a process that lingers meets its window.
                    watched.remove(sock.fileno())
                else:
                    self.jobrun.received += len(data)
                    if self.jobrun.received > sizes.job_bytes:
                        return f"size limit: the job sent more than {sizes.job_bytes} bytes"
                    try:
                        messages = reader.feed(data)
                    except _wire.WireError as exc:
                        raise _Violation(str(exc)) from None
                    for message in messages:
                        self._on_message(sock, message)
                        if self.fail_reason or self.state == "done":
                            break  # nothing after the last result counts
                    continue
            if status.ended and (sock.fileno() not in watched or sock.fileno() not in ready):
                return ""  # the tree is gone and nothing is left to read

    def _time_up(self) -> str:
        if self.state == "done":
            return ""  # everything arrived; a tree that will not exit is simply killed
        return "deadline" if self.jobrun.deadline <= self.window else "window"

    def _on_message(self, sock: socket.socket, message: Any) -> None:
        if isinstance(message, _wire.Oversized):
            self._on_oversized(sock, message)
            return
        kind = message.get("t") if isinstance(message, dict) else None
        now = time.monotonic()
        if kind == "ready" and self.state == "startup":
            self._between(now)
        elif kind == "fail" and self.state == "startup":
            self.fail_reason = str(message.get("reason", "job failed"))[:_MAX_TEXT]
        elif kind == "start" and self.state == "between":
            self.state, self.call_started = "call", now
            self.window = now + self.job.call_wall_s()
        elif kind == "result" and self.state == "call":
            self.results.append(self._result(message, now))
            self._between(now)
        elif kind == "call" and self.state == "call":
            self._serve_call(sock, message)
        else:
            raise _Violation(f"unexpected message {str(kind)[:40]!r} during {self.state}")

    def _on_oversized(self, sock: socket.socket, refused: _wire.Oversized) -> None:
        """A message over a size limit: a refused proxy call or a failed result; the job goes on."""
        kind = refused.kind()
        self.jobrun.refused.append(f"size limit: refused a {kind or 'malformed'} message: {refused.reason}")
        if kind == "call" and self.state == "call" and self.jobrun.handler is not None:
            self._send_bytes(sock, _wire.encode(reply_error(ProxyError(f"size limit: {refused.reason}"))))
        elif kind == "result":
            self._on_message(sock, {"t": "result", "ok": False, "value": None,
                                    "error": f"size limit: the result was refused: {refused.reason}"})
        else:
            raise _Violation(refused.reason)

    def _between(self, now: float) -> None:
        if self._current > self._total:
            self.state, self.window = "done", now + _EXIT_GRACE_S
        else:
            self.state, self.window = "between", now + self.job.call_wall_s()

    def _result(self, message: dict[str, Any], now: float) -> CallResult:
        elapsed = now - self.call_started
        cpu = message.get("cpu_s")
        cpu_s = float(cpu) if isinstance(cpu, int | float) and not isinstance(cpu, bool) \
            and math.isfinite(cpu) and cpu >= 0 else None
        limit = self.job.call_timeout_s
        over_cpu = self.job.clock == "cpu" and (message.get("timed_out") is True
                                                or (cpu_s is not None and cpu_s > limit))
        if over_cpu:
            what = (f"used {cpu_s:.3g} s of CPU time, over" if cpu_s is not None and cpu_s > limit
                    else "was stopped at")
            return CallResult(ok=False, error=f"timeout: call {self._current} of {self._total} {what} its {limit:g} s "
                              "CPU-time limit", elapsed_s=elapsed, timed_out=True, cpu_s=cpu_s)
        if elapsed > self.job.call_wall_s():
            return CallResult(ok=False, error=self._wall_text(), elapsed_s=elapsed, timed_out=True, cpu_s=cpu_s)
        error = str(message.get("error", ""))[:_MAX_TEXT]
        return CallResult(ok=message.get("ok") is True, value=message.get("value"), error=error,
                          elapsed_s=elapsed, cpu_s=cpu_s)

    def _wall_text(self) -> str:
        return (f"timeout: call {self._current} of {self._total} ran past its {self.job.call_wall_s():g} s "
                "wall-clock limit")

    def _serve_call(self, sock: socket.socket, message: dict[str, Any]) -> None:
        call = unpack_call(message)
        if call is None:
            raise _Violation("malformed remote call")
        if time.monotonic() >= self.jobrun.deadline:
            return  # no more work for this job: the loop ends it
        reply = self.jobrun.serve_call(*call)
        self._send_bytes(sock, _wire.encode(reply))

    # --- the end --------------------------------------------------------------------------------

    def _conclude(self, why: str, status: ExitStatus, cpu_rlimit_s: int = 0) -> AttemptEnd:
        """What the run does next, now that the process tree is gone (or handed to the reaper)."""
        if self.fail_reason:
            return AttemptEnd(False, self.fail_reason)
        if why.startswith(("protocol violation", "size limit")):
            return AttemptEnd(False, why)
        if self.state == "done":
            return AttemptEnd(False, "")
        if self.state == "startup":
            if why == "window":
                return AttemptEnd(False, "timeout: start-up (receiving the job, loading the source) took "
                                         f"longer than {self.job.startup_timeout_s:g} s")
            if why == "deadline":
                return AttemptEnd(True, "")  # the job run says which calls were not run
            return AttemptEnd(False, describe_end(status, cpu_rlimit_s, "start-up"))
        # A call was running (or about to start) and had to be killed, or its process died:
        # that call fails alone, and the job run goes on with the next one if time is left.
        elapsed = self.ended - self.call_started if self.state == "call" else 0.0
        if why == "deadline" and self.state == "between":
            return AttemptEnd(True, "")  # the next call never started: the job run reports it not run
        if why == "window":
            failed = CallResult(ok=False, error=self._wall_text(), elapsed_s=elapsed, timed_out=True)
        elif why == "deadline":
            failed = CallResult(ok=False, error=f"timeout: {self.jobrun.deadline_note} passed during call "
                                f"{self._current} of {self._total}", elapsed_s=elapsed, timed_out=True)
        else:
            phase = f"call {self._current} of {self._total}"
            failed = CallResult(ok=False, error=describe_end(status, cpu_rlimit_s, phase), elapsed_s=elapsed)
        self.results.append(failed)
        return AttemptEnd(True, "")

    def _finish(self, spare: Spare, status: ExitStatus, *, kill: bool) -> None:
        """Make sure the tree is gone (killing it if asked or if it lingers) and drain output."""
        if kill:
            spare.worker.kill(spare.number)
        if not status.wait(time.monotonic() + _EXIT_GRACE_S):
            spare.worker.kill(spare.number)
            status.wait(time.monotonic() + _EXIT_GRACE_S)
        deadline = time.monotonic() + _DRAIN_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([spare.out_read], [], [], max(0.0, deadline - time.monotonic()))
            if ready and not self._read_output(spare.out_read):
                break

    def _drain(self, out_read: int) -> None:
        """Read the output already written (the job flushes it before each result), without waiting."""
        while select.select([out_read], [], [], 0)[0] and self._read_output(out_read):
            pass

    # --- plumbing -------------------------------------------------------------------------------

    def _send_bytes(self, sock: socket.socket, payload: bytes) -> bool:
        """Send all of ``payload`` before the current limit; False if the limit passed first."""
        data = memoryview(payload)
        while data:
            try:  # the socket does not block: try first, wait only when it is full
                data = data[sock.send(data):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return True  # the job is gone; its end is reported by the worker
            remaining = min(self.window, self.jobrun.deadline) - time.monotonic()
            if remaining <= 0:
                return False
            select.select([], [sock], [], remaining)
        return True

    def _read_output(self, out_read: int) -> bool:
        """Read what is there; keep the last ``output_limit`` bytes. False at EOF."""
        try:
            chunk = os.read(out_read, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return True
        if not chunk:
            return False
        self.output += chunk
        limit = self.jobrun.output_limit
        if len(self.output) > limit:
            del self.output[: len(self.output) - limit]
        return True
