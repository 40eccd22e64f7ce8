"""The broker's handle on one worker process (a fork server, ``_forkserver_main``): start it,
take the confined spares it keeps ready, ask it to kill one, and stop it.

Control messages are JSON over a SOCK_SEQPACKET socket pair, one message per packet. The server
sends a ``spare`` message for each spare once it is confined, carrying as SCM_RIGHTS the
broker's ends of the spare's job socket, output pipe and exit-report pipe, and a pidfd of the
spare (where the kernel has them: readable once its tree is gone); the broker answers
``took`` when it has given one a job (the server then forks a replacement) and ``kill`` to end
one. Job messages never pass through here: the job's thread talks to its spare directly and
waits on its own descriptors, so the broker needs no thread per worker.
"""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftaught.errors import SandboxError
from selftaught.sandbox import _cgroup, _launch
from selftaught.sandbox._reaper import Reaper

__all__ = ["Spare", "WorkerHandle"]

_START_TIMEOUT_S = 60.0


@dataclass
class Spare:
    """A confined process waiting for its job: the broker's ends of its descriptors."""

    worker: WorkerHandle
    number: int  # the server's name for it (``kill`` takes it)
    sock: socket.socket  # the job's messages, both ways
    out_read: int  # the job's stdout and stderr
    status_read: int  # the server's exit report once the job's tree is gone
    cgroup: str  # its cgroup folders' name in each of the worker's folders ("" without)
    baseline: dict[str, int]  # the cgroup's limit counters before this job (folders are reused)
    exit_fd: int = -1  # its pidfd: readable once its tree is gone (-1: the kernel has none)

    def close(self) -> None:
        """Close the broker's ends (each at most once)."""
        self.sock.close()
        for name in ("out_read", "status_read", "exit_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)


class WorkerHandle:
    """One warm fork server (inside bwrap when ``use_bwrap``)."""

    def __init__(self, index: int, use_bwrap: bool, settings: dict[str, Any], log_dir: Path,
                 tmpfs_mb: int, io: Reaper, binds: Sequence[tuple[str, str]] = (),
                 cgroup_dirs: dict[str, str] | None = None) -> None:
        self.index = index
        self._binds = tuple(binds)
        self.hello: dict[str, Any] = {}
        dirs = dict(cgroup_dirs or {})  # host paths of its cgroup folders, per controller
        # Reads the counters of its jobs' cgroups (what their limits did), from the host side.
        self.cgroups = _cgroup.JobCgroups(2 if set(dirs) == {"unified"} else 1, dirs, 0, 0) if dirs else None
        self._use_bwrap = use_bwrap
        self._settings = settings
        self._log_path = log_dir / f"worker-{index}.log"
        self._tmpfs_mb = tmpfs_mb
        self._io = io  # the sandbox's I/O thread, which receives the offers (``receive``)
        self._lock = threading.Lock()  # counts and sends
        self._offered = threading.Condition()  # guards the two below
        self._spares: list[Spare] = []  # offered and not yet taken
        self._ended = ""  # why no more offers will come ("" while the server runs)
        self._in_flight = 0
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return (self._control is not None and not self._ended and self._process is not None
                and self._process.poll() is None)

    @property
    def has_spare(self) -> bool:
        """Whether a spare is queued here (read without the lock: a hint for picking a worker)."""
        return bool(self._spares)

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
        self._io.watch(parent.fileno(), self.receive)

    def receive(self) -> bool:
        """Queue every offer waiting on the control socket (the I/O thread calls this when it is
        readable, so taking a spare costs the job no system call); False once the server is gone."""
        control = self._control
        while control is not None:
            try:
                data, fds = _recv_offer(control)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:
                return self._end(f"sandbox worker unreachable: {exc}")
            spare = self._spare(data, fds)
            if spare is None:
                return self._end(f"sandbox worker {self.index} stopped: {self._log_tail()}")
            with self._offered:
                self._spares.append(spare)
                self._offered.notify()
        return False

    def _end(self, why: str) -> bool:
        with self._offered:
            self._ended = self._ended or why
            self._offered.notify_all()
        return False

    def take(self, timeout_s: float) -> Spare | str:
        """The next confined spare (waiting up to ``timeout_s`` for the server to offer one), or
        why there is none. The caller says ``took`` once it has sent the job."""
        with self._offered:
            if not self._offered.wait_for(lambda: self._spares or self._ended, max(0.001, timeout_s)):
                return f"sandbox worker {self.index} had no spare process ready within {timeout_s:.3g} s"
            return self._spares.pop(0) if self._spares else self._ended

    def took(self, spare: int, busy: bool) -> None:
        """Tell the server ``spare`` has its job (it forks a replacement), and whether every CPU
        slot of the sandbox is held or waited for (``busy``: its next spares get jobs as soon as
        they are ready). Sent once the job is on its way, so the server's work starts off the
        job's path; a dead server is seen by the job."""
        self._send({"op": "took", "spare": spare, "busy": busy})

    def _spare(self, data: bytes, fds: list[int]) -> Spare | None:
        # Parsed on the sandbox's I/O thread, so nothing in it may raise: anything malformed
        # counts as the server gone.
        try:
            message = json.loads(data) if data else {}
            number = int(message["spare"]) if message.get("t") == "spare" and len(fds) in (3, 4) else None
            found = message.get("baseline")
            baseline = {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}
        except (ValueError, TypeError, KeyError, AttributeError):
            number = None
        if number is None:
            for fd in fds:
                os.close(fd)
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fds[0])  # kind given: 2 system calls fewer
        sock.setblocking(False)
        for fd in fds[1:]:
            os.set_blocking(fd, False)
        return Spare(self, number, sock, fds[1], fds[2], str(message.get("cgroup", "")), baseline,
                     fds[3] if len(fds) == 4 else -1)

    def kill(self, spare: int) -> None:
        """Kill the job (or spare) ``spare``'s whole process tree (no-op if it already ended)."""
        self._send({"op": "kill", "spare": spare})

    def _send(self, message: dict[str, Any]) -> str:
        with self._lock:
            if self._control is None:
                return "sandbox worker is not running"
            try:
                self._control.send(json.dumps(message).encode())
            except OSError as exc:
                return f"sandbox worker unreachable: {exc}"
        return ""

    def stop(self) -> None:
        """Close the control socket (the worker kills its jobs and spares and exits), then reap it."""
        with self._lock:
            control, self._control = self._control, None
        if control is not None:
            self._io.unwatch(control.fileno())
            control.close()
        self._end("sandbox worker is not running")  # a thread waiting in ``take`` wakes up now
        with self._offered:
            spares, self._spares = self._spares, []
        for spare in spares:
            spare.close()
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
        return f"WorkerHandle(index={self.index}, pid={pid}, alive={self.alive})"


def _recv_offer(control: socket.socket) -> tuple[bytes, list[int]]:
    """One control message and the descriptors passed with it, without blocking
    (``socket.recv_fds`` drops its ``flags`` in Python 3.11)."""
    fds = array.array("i")
    data, ancillary, _, _ = control.recvmsg(1 << 12, socket.CMSG_LEN(4 * fds.itemsize), socket.MSG_DONTWAIT)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)
