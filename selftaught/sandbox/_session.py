"""One job, seen from the broker: feed it, answer its proxy calls, time it, and collect results.

Runs entirely in the thread that called ``Sandbox.run``: every read is a ``select`` against a
deadline (an orphan holding a pipe open can never hang it), handler calls happen here, and the
CPU slot is released while the job waits on a handler so nested jobs can always run. Killing and
reaping the process tree is the worker's job; this module only asks for it and waits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from selftaught.errors import SandboxError, SelftaughtError
from selftaught.records import CallResult, Job, Outcome
from selftaught.sandbox import _wire
from selftaught.sandbox._workerproc import WorkerProcess
from selftaught.sandbox.base import Handler

__all__ = ["JobSession", "SizeLimits"]

_EXIT_GRACE_S = 10.0  # how long a finished or killed tree may take to be reported gone
_DRAIN_S = 1.0  # how long to wait for the output pipe's EOF once the tree is gone
_MAX_TEXT = 2000


@dataclass(frozen=True)
class SizeLimits:
    """What one job may send the broker: per message, in all, and in parsed JSON values."""

    message_bytes: int = _wire.MAX_FRAME_BYTES
    job_bytes: int = 4 * _wire.MAX_FRAME_BYTES
    job_values: int = 0  # 0: no bound


class _Violation(Exception):
    """The job broke the message protocol; it is killed and the job fails with this reason."""


class JobSession:
    """Drives one job through a worker; ``run`` returns its ``Outcome``."""

    def __init__(self, job: Job, handler: Handler | None, slots: threading.Semaphore,
                 output_limit_bytes: int, sizes: SizeLimits | None = None) -> None:
        self.job = job
        self.sizes = sizes or SizeLimits()
        self.received = 0
        self.refused: list[str] = []  # messages refused for their size (reported with the output)
        self.handler = handler
        self.slots = slots
        self.output_limit = output_limit_bytes
        self.results: list[CallResult] = []
        self.output = bytearray()
        self.fail_reason = ""
        self.done = False
        self.holding_slot = False
        self.deadline = 0.0
        self.call_started = 0.0
        # Until "ready" arrives (only sent for slow loads) the job may be loading or in call 1.
        self.phase = f"loading the source or call 1 of {len(job.calls)}" if job.calls else "loading the source"

    # --- the job's life -------------------------------------------------------------------------

    def run(self, worker: WorkerProcess, job_id: str, uid: int, limits: dict[str, int]) -> Outcome:
        started = time.monotonic()
        self.call_started = started  # call 1 may start without a "ready" message (a fast load)
        payload = encode_job(self.job)
        sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_read, out_write = os.pipe()
        status_read, status_write = os.pipe()
        for fd in (out_read, status_read):
            os.set_blocking(fd, False)
        sock.setblocking(False)
        self._acquire()
        worker.track(+1)
        try:
            try:
                spawn_error = worker.spawn(job_id, (child_sock.fileno(), out_write, status_write), uid, limits)
            finally:
                child_sock.close()
                os.close(out_write)
                os.close(status_write)
            if spawn_error:
                return Outcome(ok=False, reason=f"sandbox failure: {spawn_error}",
                               elapsed_s=time.monotonic() - started)
            status = _ExitStatus(status_read)
            try:
                reason = self._converse(sock, out_read, status, payload)
            except _Violation as exc:
                reason = f"protocol violation: {exc}"
            except BaseException:
                self._finish(worker, job_id, status, out_read, kill=True)
                raise
            self._finish(worker, job_id, status, out_read, kill=bool(reason))
            return self._outcome(reason, status, time.monotonic() - started)
        finally:
            worker.track(-1)
            self._release()
            sock.close()
            os.close(out_read)
            os.close(status_read)

    def _converse(self, sock: socket.socket, out_read: int, status: _ExitStatus, payload: bytes) -> str:
        """Exchange messages until the job's socket closes; a non-empty return is a kill reason."""
        timeout = self.job.call_timeout_s
        self._send_bytes(sock, payload, timeout)
        self.deadline = time.monotonic() + timeout
        reader = _wire.FrameReader(self.sizes.message_bytes, self.sizes.job_values)
        watched = [sock.fileno(), out_read, status.fd]
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                if self.done or self.fail_reason:
                    return ""  # everything arrived; a tree that will not exit is simply killed
                return f"timeout: {self.phase} took longer than {timeout:g}s"
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
                self.received += len(data)
                if self.received > self.sizes.job_bytes:
                    return f"size limit: the job sent more than {self.sizes.job_bytes} bytes"
                try:
                    messages = reader.feed(data)
                except _wire.WireError as exc:
                    raise _Violation(str(exc)) from None
                for message in messages:
                    self._on_message(sock, message)

    def _on_message(self, sock: socket.socket, message: Any) -> None:
        if isinstance(message, _wire.Oversized):
            self._on_oversized(sock, message)
            return
        kind = message.get("t") if isinstance(message, dict) else None
        now = time.monotonic()
        if kind == "ready":
            self._progress(now, 0)
            self.done = not self.job.calls
        elif kind == "fail":
            self.fail_reason = str(message.get("reason", "job failed"))[:_MAX_TEXT]
            self.deadline = now + min(self.job.call_timeout_s, _EXIT_GRACE_S)
        elif kind == "result":
            if len(self.results) >= len(self.job.calls):
                raise _Violation("more results than calls")
            error = str(message.get("error", ""))[:_MAX_TEXT]
            self.results.append(CallResult(ok=message.get("ok") is True, value=message.get("value"),
                                           error=error, elapsed_s=now - self.call_started))
            self._progress(now, len(self.results))
            if len(self.results) == len(self.job.calls):
                self.done = True  # the job process exits next; give it a bounded while to do so
                self.deadline = now + min(self.job.call_timeout_s, _EXIT_GRACE_S)
        elif kind == "call":
            self._serve_call(sock, message)
        else:
            raise _Violation(f"unknown message {str(kind)[:40]!r}")

    def _on_oversized(self, sock: socket.socket, refused: _wire.Oversized) -> None:
        """A message over a size limit: a refused proxy call or a failed result; the job goes on."""
        kind = refused.kind()
        self.refused.append(f"size limit: refused a {kind or 'malformed'} message: {refused.reason}")
        if kind == "call" and self.handler is not None:
            self._send(sock, {"ok": False, "error_class": "ProxyError", "message": f"size limit: {refused.reason}"},
                       self.job.call_timeout_s)
            self.deadline = time.monotonic() + self.job.call_timeout_s
        elif kind == "result":
            self._on_message(sock, {"t": "result", "ok": False, "value": None,
                                    "error": f"size limit: the result was refused: {refused.reason}"})
        else:
            raise _Violation(refused.reason)

    def _progress(self, now: float, finished: int) -> None:
        self.call_started = now
        self.deadline = now + self.job.call_timeout_s
        self.phase = f"call {finished + 1} of {len(self.job.calls)}"

    def _serve_call(self, sock: socket.socket, message: dict[str, Any]) -> None:
        remote, method = message.get("remote"), message.get("method")
        args, kwargs = message.get("args", []), message.get("kwargs", {})
        if not (isinstance(remote, str) and isinstance(method, str) and isinstance(args, list)
                and isinstance(kwargs, dict)):
            raise _Violation("malformed remote call")
        reply: dict[str, Any]
        if self.handler is None:
            reply = {"ok": False, "error_class": "SandboxError", "message": "no handler for remote calls"}
        else:
            self._release()  # a job waiting on the broker must not hold a CPU slot
            try:
                reply = {"ok": True, "value": self.handler(remote, method, args, kwargs)}
            except SelftaughtError as exc:
                reply = {"ok": False, "error_class": type(exc).__name__, "message": str(exc)}
            finally:
                self._acquire()
        self._send(sock, reply, self.job.call_timeout_s)
        self.deadline = time.monotonic() + self.job.call_timeout_s

    # --- plumbing -------------------------------------------------------------------------------

    def _send(self, sock: socket.socket, message: Any, timeout_s: float) -> None:
        self._send_bytes(sock, _wire.encode(message), timeout_s)

    def _send_bytes(self, sock: socket.socket, payload: bytes, timeout_s: float) -> None:
        data = memoryview(payload)
        deadline = time.monotonic() + timeout_s
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Violation("job stopped reading its messages")
            _, writable, _ = select.select([], [sock], [], remaining)
            if writable:
                try:
                    data = data[sock.send(data):]
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return  # the job is gone; its end is reported by the worker

    def _read_output(self, out_read: int) -> bool:
        """Read what is there; keep the last ``output_limit`` bytes. False at EOF."""
        try:
            chunk = os.read(out_read, 1 << 16)
        except (BlockingIOError, InterruptedError):
            return True
        if not chunk:
            return False
        self.output += chunk
        if len(self.output) > self.output_limit:
            del self.output[: len(self.output) - self.output_limit]
        return True

    def _finish(self, worker: WorkerProcess, job_id: str, status: _ExitStatus, out_read: int, *,
                kill: bool) -> None:
        """Make sure the tree is gone (killing it if asked or if it lingers) and drain output."""
        if kill:
            worker.kill(job_id)
        grace = _EXIT_GRACE_S if kill else self.job.call_timeout_s + _EXIT_GRACE_S
        if not status.wait(time.monotonic() + grace):
            worker.kill(job_id)
            status.wait(time.monotonic() + _EXIT_GRACE_S)
        deadline = time.monotonic() + _DRAIN_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([out_read], [], [], max(0.0, deadline - time.monotonic()))
            if ready and not self._read_output(out_read):
                break

    def _outcome(self, reason: str, status: _ExitStatus, elapsed_s: float) -> Outcome:
        results = tuple(self.results)
        stderr = self.output.decode(errors="replace") + _limits_note(status.limited, self.refused)
        if not reason:
            if self.fail_reason:
                reason = self.fail_reason
            elif not self.done:
                reason = _describe_end(status.code, status.error, self.phase)
        if reason:
            return Outcome(ok=False, results=results, reason=reason, stderr=stderr, elapsed_s=elapsed_s)
        return Outcome(ok=True, results=results, stderr=stderr, elapsed_s=elapsed_s)

    def _acquire(self) -> None:
        if not self.holding_slot:
            self.slots.acquire()
            self.holding_slot = True

    def _release(self) -> None:
        if self.holding_slot:
            self.holding_slot = False
            self.slots.release()


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


def _limits_note(limited: dict[str, int], refused: list[str]) -> str:
    """Lines after the job's output saying what its limits stopped (the broker records them)."""
    lines = [refused[0] + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")] if refused else []
    if limited.get("oom_kills"):
        lines.append(f"{limited['oom_kills']} process(es) killed at the job's memory limit")
    if limited.get("pids_refused"):
        lines.append(f"{limited['pids_refused']} fork(s) refused at the job's process limit")
    return "".join(f"\n[sandbox] {line}" for line in lines) + ("\n" if lines else "")


def _describe_end(status: int | None, worker_error: str, phase: str) -> str:
    if status is None:
        return f"sandbox failure while {phase}: {worker_error or 'no exit status'}"
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


def encode_job(job: Job) -> bytes:
    """The job's first frame; ``SandboxError`` if the job itself is malformed (a broker bug)."""
    declared = {remote.name for remote in job.remotes}
    for call in job.calls:
        for arg in call:
            if isinstance(arg, dict) and set(arg) == {"$remote"} and arg["$remote"] not in declared:
                raise SandboxError(f"job argument names undeclared remote {arg['$remote']!r}")
    try:
        return _wire.encode(_job_message(job))
    except (TypeError, ValueError, _wire.WireError) as exc:
        raise SandboxError(f"job is not JSON data: {exc}") from exc


def _job_message(job: Job) -> dict[str, Any]:
    return {
        "source": job.source,
        "entry": job.entry,
        "calls": [list(call) for call in job.calls],
        "array_args": sorted(job.array_args),
        "seed": job.seed,
        "modules": [[name, source] for name, source in job.modules],
        "remotes": [{"name": r.name, "attributes": dict(r.attributes), "methods": list(r.methods)}
                    for r in job.remotes],
    }

