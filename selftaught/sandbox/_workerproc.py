"""The broker's handle on one fork-server worker process: start it, ask it to spawn or kill
jobs, learn how each job's process tree ended, and stop it.

Control messages are JSON over a SOCK_SEQPACKET socket pair (one message per packet); spawn
requests carry the job's three descriptors as SCM_RIGHTS: its message socket, its output pipe and
the pipe on which the worker reports that the job's process tree is gone. So the broker never
needs a thread per worker: each job's thread waits on its own descriptors. Job messages never
pass through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selftaught.errors import SandboxError
from selftaught.sandbox import _launch

__all__ = ["WorkerProcess"]

_START_TIMEOUT_S = 60.0


class WorkerProcess:
    """One warm fork server (inside bwrap when ``use_bwrap``)."""

    def __init__(self, index: int, use_bwrap: bool, settings: dict[str, Any], log_dir: Path,
                 tmpfs_mb: int, binds: Sequence[tuple[str, str]] = ()) -> None:
        self.index = index
        self._binds = tuple(binds)
        self.hello: dict[str, Any] = {}
        self._use_bwrap = use_bwrap
        self._settings = settings
        self._log_path = log_dir / f"worker-{index}.log"
        self._tmpfs_mb = tmpfs_mb
        self._lock = threading.Lock()
        self._in_flight = 0
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._control is not None and self._process is not None and self._process.poll() is None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def track(self, delta: int) -> None:
        """Count jobs in flight here (the pool sends new jobs to the least busy worker)."""
        with self._lock:
            self._in_flight += delta

    def start(self) -> None:
        """Launch the worker and wait for its hello (numpy imported, filter built)."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        args_read, args_write = os.pipe()
        try:
            command = _launch.worker_command(self._use_bwrap, child.fileno(), self._tmpfs_mb, self._binds)
            blob = b""
            if self._use_bwrap:
                command, blob = _launch.through_args_fd(command, args_read)
            with self._log_path.open("ab") as log:
                # env is given explicitly: the broker's own environment (API keys) never passes.
                self._process = subprocess.Popen(
                    command, env=dict(_launch.SANDBOX_ENV), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=log, pass_fds=(child.fileno(), args_read), cwd="/", close_fds=True,
                    start_new_session=True)
            os.close(args_read)
            args_read = -1
            with os.fdopen(args_write, "wb") as sink:  # bwrap reads it to EOF before anything else
                args_write = -1
                sink.write(blob)
        except OSError as exc:
            parent.close()
            raise SandboxError(f"cannot start sandbox worker: {exc}") from exc
        finally:
            child.close()
            for fd in (args_read, args_write):
                if fd >= 0:
                    os.close(fd)
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

    def spawn(self, job: str, fds: tuple[int, int, int], uid: int, limits: dict[str, int]) -> str:
        """Ask for a job process tree on (socket, output, status) fds; an error text or ""."""
        message = json.dumps({"op": "spawn", "job": job, "uid": uid, "limits": limits}).encode()
        with self._lock:
            if self._control is None:
                return "sandbox worker is not running"
            try:
                socket.send_fds(self._control, [message], list(fds))
            except OSError as exc:
                return f"sandbox worker unreachable: {exc}"
        return ""

    def kill(self, job: str) -> None:
        """Kill the job's whole process tree (no-op if it already ended)."""
        with self._lock:
            if self._control is not None:
                with contextlib.suppress(OSError):
                    self._control.send(json.dumps({"op": "kill", "job": job}).encode())

    def stop(self) -> None:
        """Close the control socket (the worker kills its jobs and exits), then reap it."""
        with self._lock:
            control, self._control = self._control, None
        if control is not None:
            with contextlib.suppress(OSError):
                control.shutdown(socket.SHUT_RDWR)
            control.close()
        self._reap_process()

    def _reap_process(self) -> None:
        if self._process is None:
            return
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def _log_tail(self) -> str:
        try:
            text = self._log_path.read_bytes()[-600:].decode(errors="replace").strip()
        except OSError:
            text = ""
        return " | ".join(text.splitlines()[-3:]) if text else "no output"

    def __repr__(self) -> str:
        pid = self._process.pid if self._process else None
        return f"WorkerProcess(index={self.index}, pid={pid}, alive={self.alive})"
