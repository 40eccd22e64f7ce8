"""One job, seen from the broker: its slot, its deadline, its processes, and its ``Outcome``.

A job runs in one sandboxed process (``_attempt``) as long as its calls behave. A call that has
to be killed (past its wall-clock limit, or its process died) fails alone: the job goes on in a
fresh process with the calls after it. The whole job has one absolute deadline, fixed when it
gets its CPU slot: the job's own ``Job.deadline()``, or the deadline of the job whose proxy call
started it (a solution scored inside an improver run ends with that run), whichever comes first.
Nothing the sandboxed code sends moves it. Everything runs in the thread that called
``Sandbox.run``, except waiting for the exit of a job whose results are all in: the caller gets
its ``Outcome`` at once and the reaper (``_reaper``) frees the job's CPU slot once the worker
reports the tree gone. Killing and reaping process trees is the worker's job.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from selftaught.errors import SandboxError, SelftaughtError
from selftaught.proxy.calls import reply_error, reply_value, spec_message
from selftaught.records import CallResult, Job, Outcome
from selftaught.sandbox import _wire
from selftaught.sandbox._attempt import Attempt, Launch
from selftaught.sandbox._reaper import Reaper
from selftaught.sandbox._worker_handle import Spare
from selftaught.sandbox.base import Handler

__all__ = ["JobRun", "SizeLimits", "Slots", "encode_job", "time_left"]

_MAX_STDERR = 1 << 20

_local = threading.local()
"""``deadline``: while this thread serves a job's proxy call, the monotonic time that job must end."""


class Slots:
    """The sandbox's CPU slots (one job process each), and whether they are all in demand."""

    def __init__(self, count: int) -> None:
        self._semaphore = threading.BoundedSemaphore(count)
        self._lock = threading.Lock()
        self._count = count
        self._wanted = 0  # jobs holding a slot or waiting for one

    @property
    def full(self) -> bool:
        """Whether every slot is held or waited for: the next spares get jobs as soon as they
        are ready. Read without the lock: a hint."""
        return self._wanted >= self._count

    def acquire(self) -> None:
        with self._lock:
            self._wanted += 1
        try:
            self._semaphore.acquire()
        except BaseException:
            self._forget()
            raise

    def release(self) -> None:
        self._semaphore.release()
        self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._wanted -= 1


@dataclass(frozen=True)
class SizeLimits:
    """What one job may send the broker: per message, in all, and in parsed JSON values."""

    message_bytes: int = _wire.MAX_FRAME_BYTES
    job_bytes: int = 4 * _wire.MAX_FRAME_BYTES
    job_values: int = 0  # 0: no bound


def time_left() -> float | None:
    """Seconds until the deadline of the job whose proxy call this thread is serving (None when
    it serves none). A job this thread starts ends by then; a sandbox that runs jobs elsewhere
    (another process or machine) passes it on as the job's ``deadline_s``."""
    deadline = getattr(_local, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


class JobRun:
    """Drives one job, over as many processes as its calls need; ``run`` returns its ``Outcome``."""

    def __init__(self, job: Job, handler: Handler | None, slots: Slots,
                 output_limit_bytes: int, launch: Launch, reaper: Reaper, sizes: SizeLimits | None = None) -> None:
        self.job = job
        self.sizes = sizes or SizeLimits()
        self.received = 0  # bytes the job sent, over all its processes
        self.refused: list[str] = []  # messages refused for their size (reported with the output)
        self.limited: dict[str, int] = {}  # what the job's cgroup limits did (see ``_cgroup.events``)
        self.handler = handler
        self.slots = slots
        self.output_limit = output_limit_bytes
        self.launch = launch
        self.reaper = reaper
        self.holding_slot = False
        self.deadline = 0.0
        self.deadline_note = ""
        self.first_payload = b""

    def run(self) -> Outcome:
        self.first_payload = encode_job(self.job)  # a malformed job raises before anything runs
        self._acquire()
        try:
            started = time.monotonic()
            self.deadline = started + self.job.deadline()
            self.deadline_note = f"the job's {self.job.deadline():g} s deadline"
            enclosing = getattr(_local, "deadline", None)
            if enclosing is not None and enclosing < self.deadline:
                self.deadline = enclosing
                self.deadline_note = "the deadline of the job whose proxy call started it"
            return self._run_attempts(started)
        finally:
            self._release()

    def _run_attempts(self, started: float) -> Outcome:
        results: list[CallResult] = []
        stderr = bytearray()
        restarts = 0
        total = len(self.job.calls)
        while True:
            attempt = Attempt(self, first=len(results))
            end = attempt.run()
            results.extend(attempt.results)
            stderr += attempt.output
            if len(stderr) > self.output_limit:
                del stderr[: len(stderr) - self.output_limit]
            if end.restart and len(results) < total and time.monotonic() < self.deadline:
                restarts += 1
                continue
            reason = end.reason
            if end.restart and len(results) < total:
                first = len(results) + 1
                span = f"call {first}" if first == total else f"calls {first}-{total}"
                reason = f"deadline: {self.deadline_note} passed; {span} of {total} not run"
            return Outcome(ok=not reason, results=tuple(results), reason=reason,
                           stderr=stderr.decode(errors="replace") + _limits_note(self.limited, self.refused),
                           elapsed_s=time.monotonic() - started, restarts=restarts)

    def payload(self, first: int) -> bytes:
        """The first frame of a process that runs the job from call ``first`` (0-based) on."""
        return self.first_payload if first == 0 else encode_job(self.job, first)

    def hand_over(self, spare: Spare) -> None:
        """Leave the exit of ``spare``'s tree (its results all in) to the reaper, with this job's
        CPU slot and its place in the worker's count, which the reaper frees once it is gone."""
        slot, self.holding_slot = self.holding_slot, False
        worker, slots = spare.worker, self.slots

        def release() -> None:
            worker.track(-1)
            if slot:
                slots.release()

        self.reaper.hand_over(spare, release)

    def serve_call(self, remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Answer one proxy call through the handler, without holding a CPU slot meanwhile."""
        if self.handler is None:
            return reply_error(SandboxError("no handler for remote calls"))
        self._release()  # a job waiting on the broker must not hold a CPU slot
        outer = getattr(_local, "deadline", None)
        _local.deadline = self.deadline  # jobs the handler starts end by this job's deadline
        try:
            return reply_value(self.handler(remote, method, args, kwargs))
        except SelftaughtError as exc:
            return reply_error(exc)
        finally:
            _local.deadline = outer
            self._acquire()

    def _acquire(self) -> None:
        if not self.holding_slot:
            self.slots.acquire()
            self.holding_slot = True

    def _release(self) -> None:
        if self.holding_slot:
            self.holding_slot = False
            self.slots.release()


def _limits_note(limited: dict[str, int], refused: list[str]) -> str:
    """Lines after the job's output saying what its limits stopped (the broker records them)."""
    lines = [refused[0] + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")] if refused else []
    if limited.get("oom_kills"):
        lines.append(f"{limited['oom_kills']} process(es) killed at the job's memory limit")
    if limited.get("pids_refused"):
        lines.append(f"{limited['pids_refused']} fork(s) refused at the job's process limit")
    return "".join(f"\n[sandbox] {line}" for line in lines) + ("\n" if lines else "")


def encode_job(job: Job, first: int = 0) -> bytes:
    """The first frame of a process running ``job`` from call ``first`` on; ``SandboxError`` if
    the job itself is malformed (a broker bug)."""
    declared = {remote.name for remote in job.remotes}
    for call in job.calls:
        for arg in call:
            if isinstance(arg, dict) and set(arg) == {"$remote"} and arg["$remote"] not in declared:
                raise SandboxError(f"job argument names undeclared remote {arg['$remote']!r}")
    try:
        return _wire.encode(_job_message(job, first))
    except (TypeError, ValueError, _wire.WireError) as exc:
        raise SandboxError(f"job is not JSON data: {exc}") from exc


def _job_message(job: Job, first: int) -> dict[str, Any]:
    return {
        "source": job.source,
        "entry": job.entry,
        "calls": [list(call) for call in job.calls[first:]],
        "array_args": sorted(job.array_args),
        "seed": job.seed,
        "modules": [[name, source] for name, source in job.modules],
        "remotes": [spec_message(remote) for remote in job.remotes],
        "cpu_limit_s": job.call_timeout_s if job.clock == "cpu" else None,
    }
