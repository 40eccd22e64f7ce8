"""One process of a job, seen from the broker: feed it, time each call, answer its proxy calls.

The process reports its progress in messages (``ready`` after start-up, ``start`` and ``result``
per call), and each phase gets a window: start-up ``Job.startup_timeout_s``, each call and the gap
before it ``Job.call_wall_s()``. A message only opens the window of the next phase (a second
``ready`` or an unexpected ``start`` breaks the protocol), and no window reaches past the job's
deadline, so nothing the process sends buys it time. A call whose window closes is killed with
its process, and the ``Attempt`` says the job should go on in a fresh one. Every read is a
``select`` against the nearest limit, so an orphan holding a pipe open can never hang it.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from selftaught.errors import ProxyError
from selftaught.proxy.calls import reply_error, unpack_call
from selftaught.records import CallResult
from selftaught.sandbox import _wire
from selftaught.sandbox._workerproc import WorkerProcess

if TYPE_CHECKING:
    from selftaught.sandbox._session import JobSession

__all__ = ["Attempt", "AttemptEnd", "Launch"]

Launch = tuple[WorkerProcess, str, int, dict[str, int]]
"""Where and how a process starts: its worker, job id, uid and rlimits."""

_EXIT_GRACE_S = 10.0  # how long a finished or killed tree may take to be reported gone
_DRAIN_S = 1.0  # how long to wait for the output pipe's EOF once the tree is gone
_MAX_TEXT = 2000


class _Violation(Exception):
    """The job broke the message protocol; it is killed and the job fails with this reason."""


@dataclass(frozen=True)
class AttemptEnd:
    """How a process ended: ``restart`` when a call failed by being killed and later calls may
    still run; otherwise ``reason`` is why the job failed ("" when it did not)."""

    restart: bool
    reason: str


class Attempt:
    """Runs the session's job from call ``first`` on in one fresh process."""

    def __init__(self, session: JobSession, first: int) -> None:
        self.session = session
        self.job = session.job
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
        payload = self.session.payload(self.first)
        cpu_allowed = max(1.0, self.session.deadline - time.monotonic())
        worker, job_id, uid, limits = self.session.launch(cpu_allowed)
        sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_read, out_write = os.pipe()
        status_read, status_write = os.pipe()
        for fd in (out_read, status_read):
            os.set_blocking(fd, False)
        sock.setblocking(False)
        worker.track(+1)
        try:
            try:
                spawn_error = worker.spawn(job_id, (child_sock.fileno(), out_write, status_write), uid, limits)
            finally:
                child_sock.close()
                os.close(out_write)
                os.close(status_write)
            if spawn_error:
                return AttemptEnd(False, f"sandbox failure: {spawn_error}")
            status = _ExitStatus(status_read)
            self.window = time.monotonic() + self.job.startup_timeout_s
            try:
                why = self._converse(sock, out_read, status, payload)
            except _Violation as exc:
                why = f"protocol violation: {exc}"
            except BaseException:
                self._finish(worker, job_id, status, out_read, kill=True)
                raise
            self.ended = time.monotonic()
            lingering = self.ended >= min(self.window, self.session.deadline)  # done, but not exiting
            self._finish(worker, job_id, status, out_read, kill=bool(why) or self.state != "done" or lingering)
            for key, count in status.limited.items():
                self.session.limited[key] = self.session.limited.get(key, 0) + count
            return self._conclude(why, status)
        finally:
            worker.track(-1)
            sock.close()
            os.close(out_read)
            os.close(status_read)

    # --- the conversation -----------------------------------------------------------------------

    def _converse(self, sock: socket.socket, out_read: int, status: _ExitStatus, payload: bytes) -> str:
        """Exchange messages until the process ends or a limit passes; the return says which limit."""
        if not self._send_bytes(sock, payload):
            return self._time_up()
        sizes = self.session.sizes
        reader = _wire.FrameReader(sizes.message_bytes, sizes.job_values)
        watched = [sock.fileno(), out_read, status.fd]
        while True:
            remaining = min(self.window, self.session.deadline) - time.monotonic()
            if remaining <= 0:
                return self._time_up()
            ready, _, _ = select.select(watched, [], [], remaining)
            if out_read in ready and not self._read_output(out_read):
                watched.remove(out_read)
            if status.fd in ready and not status.read():
                watched.remove(status.fd)
            if status.ended and sock.fileno() not in ready:
                return ""  # the tree is gone and nothing is left to read
            if sock.fileno() in ready:
                try:
                    data = sock.recv(1 << 20)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    return ""
                self.session.received += len(data)
                if self.session.received > sizes.job_bytes:
                    return f"size limit: the job sent more than {sizes.job_bytes} bytes"
                try:
                    messages = reader.feed(data)
                except _wire.WireError as exc:
                    raise _Violation(str(exc)) from None
                for message in messages:
                    self._on_message(sock, message)
                    if self.fail_reason:
                        return ""

    def _time_up(self) -> str:
        if self.state == "done":
            return ""  # everything arrived; a tree that will not exit is simply killed
        return "deadline" if self.session.deadline <= self.window else "window"

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
        self.session.refused.append(f"size limit: refused a {kind or 'malformed'} message: {refused.reason}")
        if kind == "call" and self.state == "call" and self.session.handler is not None:
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
        if time.monotonic() >= self.session.deadline:
            return  # no more work for this job: the loop ends it
        reply = self.session.serve_call(*call)
        self._send_bytes(sock, _wire.encode(reply))

    # --- the end --------------------------------------------------------------------------------

    def _conclude(self, why: str, status: _ExitStatus) -> AttemptEnd:
        """What the session does next, now that the process tree is gone."""
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
                return AttemptEnd(True, "")  # the session says which calls were not run
            return AttemptEnd(False, _describe_end(status.code, status.error, "start-up"))
        # A call was running (or about to start) and had to be killed, or its process died:
        # that call fails alone, and the session goes on with the next one if time is left.
        elapsed = self.ended - self.call_started if self.state == "call" else 0.0
        if why == "deadline" and self.state == "between":
            return AttemptEnd(True, "")  # the next call never started: the session reports it not run
        if why == "window":
            failed = CallResult(ok=False, error=self._wall_text(), elapsed_s=elapsed, timed_out=True)
        elif why == "deadline":
            failed = CallResult(ok=False, error=f"timeout: {self.session.deadline_note} passed during call "
                                f"{self._current} of {self._total}", elapsed_s=elapsed, timed_out=True)
        else:
            phase = f"call {self._current} of {self._total}"
            failed = CallResult(ok=False, error=_describe_end(status.code, status.error, phase), elapsed_s=elapsed)
        self.results.append(failed)
        return AttemptEnd(True, "")

    def _finish(self, worker: WorkerProcess, job_id: str, status: _ExitStatus, out_read: int, *,
                kill: bool) -> None:
        """Make sure the tree is gone (killing it if asked or if it lingers) and drain output."""
        if kill:
            worker.kill(job_id)
        if not status.wait(time.monotonic() + _EXIT_GRACE_S):
            worker.kill(job_id)
            status.wait(time.monotonic() + _EXIT_GRACE_S)
        deadline = time.monotonic() + _DRAIN_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([out_read], [], [], max(0.0, deadline - time.monotonic()))
            if ready and not self._read_output(out_read):
                break

    # --- plumbing -------------------------------------------------------------------------------

    def _send_bytes(self, sock: socket.socket, payload: bytes) -> bool:
        """Send all of ``payload`` before the current limit; False if the limit passed first."""
        data = memoryview(payload)
        while data:
            remaining = min(self.window, self.session.deadline) - time.monotonic()
            if remaining <= 0:
                return False
            _, writable, _ = select.select([], [sock], [], remaining)
            if writable:
                try:
                    data = data[sock.send(data):]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return True  # the job is gone; its end is reported by the worker
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
        limit = self.session.output_limit
        if len(self.output) > limit:
            del self.output[: len(self.output) - limit]
        return True


class _ExitStatus:
    """The worker's report that a job's tree is gone: JSON on a pipe, then EOF.

    EOF without a report means the worker itself died (which takes its jobs with it).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ended = False
        self.code: int | None = None
        self.error = ""
        self.limited: dict[str, int] = {}  # what the job's cgroup limits did (see ``_cgroup.events``)
        self._data = bytearray()

    def read(self) -> bool:
        """Consume what is readable; False once the report is complete."""
        try:
            chunk = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return True
        self._data += chunk
        # The report is one small write (atomic on a pipe), so a parseable chunk is all of it;
        # waiting for EOF too would let any process that inherited the pipe delay us.
        if chunk and len(self._data) < 4096 and not _is_json(bytes(self._data)):
            return True
        self.ended = True
        try:
            report = json.loads(self._data) if self._data else {"error": "sandbox worker died"}
        except ValueError:
            report = {"error": "unreadable exit report"}
        code = report.get("status")
        self.code = code if isinstance(code, int) else None
        self.error = str(report.get("error", ""))
        self.limited = {key: int(value) for key in ("oom_kills", "pids_refused")
                        if isinstance(value := report.get(key), int)}
        return False

    def wait(self, deadline: float) -> bool:
        """Read until the report is complete or ``deadline`` passes; whether it completed."""
        while not self.ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                self.read()
        return True


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _describe_end(status: int | None, worker_error: str, phase: str) -> str:
    if status is None:
        return f"sandbox failure during {phase}: {worker_error or 'no exit status'}"
    if status == 71:
        return "sandbox setup failed (see stderr)"
    if status < 0:
        number = -status
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = {"SIGKILL": " (memory, CPU or process limit?)", "SIGXCPU": " (CPU time limit)",
                "SIGSEGV": " (crash)"}.get(name, "")
        return f"killed by {name}{hint} during {phase}"
    return f"exited with code {status} during {phase}"
