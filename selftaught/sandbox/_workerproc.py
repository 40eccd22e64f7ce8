"""The broker's handle on one fork-server worker process: start it, ask it to spawn or kill
jobs, learn how each job's process tree ended, and stop it.

Control messages are JSON over a SOCK_SEQPACKET socket pair (one message per packet; spawn
requests carry the job's descriptors as SCM_RIGHTS). A reader thread per worker turns the
worker's exit reports into per-job ``ExitWaiter`` results. Job messages never pass through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from selftaught.errors import SandboxError
from selftaught.sandbox import _launch

__all__ = ["ExitWaiter", "WorkerProcess"]

_START_TIMEOUT_S = 60.0


class ExitWaiter:
    """Becomes set when a job's process tree is gone: ``status`` is its exit code, or None."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.status: int | None = None
        self.error = ""

    def set(self, status: int | None, error: str = "") -> None:
        self.status, self.error = status, error
        self.event.set()


class WorkerProcess:
    """One warm fork server (inside bwrap when ``use_bwrap``)."""

    def __init__(self, index: int, use_bwrap: bool, settings: dict[str, Any], log_dir: Path,
                 tmpfs_mb: int) -> None:
        self.index = index
        self.hello: dict[str, Any] = {}
        self._use_bwrap = use_bwrap
        self._settings = settings
        self._log_path = log_dir / f"worker-{index}.log"
        self._tmpfs_mb = tmpfs_mb
        self._lock = threading.Lock()
        self._waiters: dict[str, ExitWaiter] = {}
        self._alive = False
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def in_flight(self) -> int:
        return len(self._waiters)

    def start(self) -> None:
        """Launch the worker and wait for its hello (numpy imported, filter built)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            command = _launch.worker_command(self._use_bwrap, child.fileno(), self._tmpfs_mb)
            with self._log_path.open("ab") as log:
                # env is given explicitly: the broker's own environment (API keys) never passes.
                self._process = subprocess.Popen(
                    command, env=dict(_launch.SANDBOX_ENV), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=log, pass_fds=(child.fileno(),), cwd="/", close_fds=True)
        except OSError as exc:
            parent.close()
            raise SandboxError(f"cannot start sandbox worker: {exc}") from exc
        finally:
            child.close()
        try:
            parent.send(json.dumps(self._settings).encode())
            parent.settimeout(_START_TIMEOUT_S)
            data = parent.recv(1 << 20)
            parent.settimeout(None)
            self.hello = json.loads(data) if data else {}
        except (OSError, ValueError):
            self.hello = {}
        if self.hello.get("t") != "hello":
            parent.close()
            self._reap_process()
            raise SandboxError(f"sandbox worker {self.index} did not start: {self._log_tail()}")
        self._control = parent
        self._alive = True
        self._reader = threading.Thread(target=self._read_reports, name=f"sandbox-worker-{self.index}",
                                        daemon=True)
        self._reader.start()

    def spawn(self, job: str, job_fd: int, out_fd: int, uid: int, limits: dict[str, int]) -> ExitWaiter:
        """Ask for a job process tree on the given descriptors; the waiter reports its end."""
        waiter = ExitWaiter()
        message = json.dumps({"op": "spawn", "job": job, "uid": uid, "limits": limits}).encode()
        with self._lock:
            if not self._alive or self._control is None:
                waiter.set(None, "sandbox worker is not running")
                return waiter
            self._waiters[job] = waiter
            try:
                socket.send_fds(self._control, [message], [job_fd, out_fd])
            except OSError as exc:
                self._waiters.pop(job, None)
                waiter.set(None, f"sandbox worker unreachable: {exc}")
        return waiter

    def kill(self, job: str) -> None:
        """Kill the job's whole process tree (no-op if it already ended)."""
        with self._lock:
            if self._alive and self._control is not None:
                with contextlib.suppress(OSError):
                    self._control.send(json.dumps({"op": "kill", "job": job}).encode())

    def stop(self) -> None:
        """Close the control socket (the worker kills its jobs and exits), then reap it."""
        with self._lock:
            self._alive = False
            if self._control is not None:
                with contextlib.suppress(OSError):
                    self._control.shutdown(socket.SHUT_RDWR)
                self._control.close()
        self._reap_process()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=5)

    def _reap_process(self) -> None:
        if self._process is None:
            return
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def _read_reports(self) -> None:
        control = self._control
        assert control is not None
        while True:
            try:
                data = control.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            try:
                report = json.loads(data)
            except ValueError:
                continue
            if report.get("t") == "exit":
                with self._lock:
                    waiter = self._waiters.pop(str(report.get("job")), None)
                if waiter is not None:
                    status = report.get("status")
                    waiter.set(status if isinstance(status, int) else None, str(report.get("error", "")))
        with self._lock:
            self._alive = False
            orphans, self._waiters = self._waiters, {}
        for waiter in orphans.values():
            waiter.set(None, "sandbox worker died")

    def _log_tail(self) -> str:
        try:
            text = self._log_path.read_bytes()[-2000:].decode(errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[-1] if text else "no output"

    def __repr__(self) -> str:
        pid = self._process.pid if self._process else None
        return f"WorkerProcess(index={self.index}, pid={pid}, alive={self._alive}, pids={os.getpid()})"
