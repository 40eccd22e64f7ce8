"""The worker's exit report on a job's process tree, as the broker reads it, and what it says in words.

The fork server writes one small JSON object on the job's report pipe once the tree is gone:
``status`` (exit code, or minus the signal number), ``cpu_s``, ``killed`` (it was killed because
the broker asked), and the job cgroup's ``oom_kills`` and ``pids_refused`` counters.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
from typing import Any

__all__ = ["ExitStatus", "describe_end"]


class ExitStatus:
    """The worker's report that a job's tree is gone: JSON on a pipe, then EOF.

    EOF without a report means the worker itself died (which takes its jobs with it).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ended = False
        self.code: int | None = None
        self.error = ""
        self.limited: dict[str, int] = {}  # what the job's cgroup limits did (see ``_cgroup.events``)
        self.killed = False  # the worker killed it because the broker asked
        self.cpu_s: float | None = None  # CPU time of the job's first process (and children it waited for)
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
        try:
            report = json.loads(self._data) if self._data else {"error": "sandbox worker died"}
        except ValueError:
            report = {"error": "unreadable exit report"}
        self.take(report if isinstance(report, dict) else {"error": "unreadable exit report"})
        return False

    def take(self, report: dict[str, Any]) -> None:
        """Record the worker's report: exit status (or error), cgroup counters, kill, CPU time."""
        self.ended = True
        code = report.get("status")
        self.code = code if isinstance(code, int) else None
        self.error = str(report.get("error", ""))
        self.limited = {key: int(value) for key in ("oom_kills", "pids_refused")
                        if isinstance(value := report.get(key), int)}
        self.killed = report.get("killed") is True
        cpu = report.get("cpu_s")
        self.cpu_s = float(cpu) if isinstance(cpu, int | float) and not isinstance(cpu, bool) else None

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


def describe_end(status: ExitStatus, cpu_rlimit_s: int, phase: str) -> str:
    """Why a process ended in ``phase``, from the worker's exit report; a SIGKILL names its cause
    when the report shows one (memory limit, CPU-time rlimit, a kill the broker asked for)."""
    code = status.code
    if code is None:
        return f"sandbox failure during {phase}: {status.error or 'no exit status'}"
    if code == 71:
        return "sandbox setup failed (see stderr)"
    if code >= 0:
        return f"exited with code {code} during {phase}"
    number = -code
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if name == "SIGKILL":
        cpu = f"{status.cpu_s:.3g} s of CPU used" if status.cpu_s is not None else "CPU time unknown"
        if status.limited.get("oom_kills"):
            return f"killed at the job's memory limit during {phase} ({cpu})"
        if cpu_rlimit_s and status.cpu_s is not None and status.cpu_s >= cpu_rlimit_s:
            return f"killed at its {cpu_rlimit_s + 1} s CPU-time rlimit during {phase} ({cpu})"
        if status.killed:
            return f"killed by SIGKILL on the broker's request during {phase} ({cpu})"
        return (f"killed by SIGKILL during {phase} ({cpu}; no memory-limit kill recorded, under its CPU-time "
                "rlimit, not asked by the broker: the host's OOM killer?)")
    hint = {"SIGXCPU": " (CPU time limit)", "SIGSEGV": " (crash)"}.get(name, "")
    return f"killed by {name}{hint} during {phase}"
