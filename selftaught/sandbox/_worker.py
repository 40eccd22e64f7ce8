"""The fork server: a warm process that forks one confined process tree per job.

It runs (inside bubblewrap where available) with numpy already imported, and listens on a
SOCK_SEQPACKET control socket from the broker. ``spawn`` carries the job's two descriptors (its
message socket and its output pipe) as SCM_RIGHTS; the server forks a trusted *job init*, which
is pid 1 of a fresh pid namespace when the kernel allows it and a child subreaper otherwise, and
that init forks the process that confines itself and runs the untrusted code (``_runner``).
The server reports each job's exit status, kills jobs on request, and wipes their scratch dirs.
It never reads job messages: those go straight between the job and the broker.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import io
import json
import os
import select
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from selftaught.sandbox import _confine, _runner

__all__ = ["main"]

_SETUP_FAILED = 71
_INIT_FAILED = 72


@dataclass
class _Entry:
    job: str
    scratch: str


class ForkServer:
    """Serves spawn/kill requests until the broker closes the control socket."""

    def __init__(self, control: socket.socket, settings: dict[str, Any]) -> None:
        self.control = control
        self.env: dict[str, str] = dict(settings.get("env", {}))
        self.scratch_root = str(settings["scratch_root"])
        self.jobs: dict[int, _Entry] = {}
        self.notes: list[str] = []
        os.makedirs(self.scratch_root, mode=0o711, exist_ok=True)
        os.chmod(self.scratch_root, 0o711)
        for name in settings.get("preload", []):
            try:
                importlib.import_module(str(name))
            except Exception as exc:  # noqa: BLE001 - a missing optional module is a note, not fatal
                self.notes.append(f"could not preload {name}: {type(exc).__name__}: {exc}")
        self.own_pidns = _confine.allow_pid_namespaces() if settings.get("pid_namespaces") else None
        self.seccomp: bytes | None = None
        if settings.get("seccomp"):
            try:
                self.seccomp = _confine.build_seccomp_filter()
            except Exception as exc:  # noqa: BLE001
                self.notes.append(f"seccomp unavailable: {type(exc).__name__}: {exc}")
        self.drop_uid = bool(settings.get("drop_uid")) and os.geteuid() == 0
        with contextlib.suppress(OSError):
            _confine.set_dumpable(False)

    def hello(self) -> dict[str, Any]:
        return {"t": "hello", "pid_namespaces": self.own_pidns is not None,
                "seccomp": self.seccomp is not None, "uid_drop": self.drop_uid, "notes": self.notes}

    def serve(self) -> None:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_write)
        self._send(self.hello())
        try:
            while True:
                ready, _, _ = select.select([self.control, wake_read], [], [], 1.0)
                if wake_read in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 4096)
                if self.control in ready and not self._handle_request():
                    return
                self._reap()
        finally:
            self._kill_all()

    def _handle_request(self) -> bool:
        data, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 4)
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        request = json.loads(data)
        if request.get("op") == "spawn" and len(fds) == 2:
            self._spawn(request, fds[0], fds[1])
        elif request.get("op") == "kill":
            self._kill(str(request["job"]))
        else:
            for fd in fds:
                os.close(fd)
        return True

    def _send(self, message: dict[str, Any]) -> None:
        self.control.send(json.dumps(message).encode())

    def _spawn(self, request: dict[str, Any], job_fd: int, out_fd: int) -> None:
        job = str(request["job"])
        uid = request.get("uid") if self.drop_uid else None
        scratch = os.path.join(self.scratch_root, f"job-{job}")
        try:
            os.mkdir(scratch, 0o700)
            if uid is not None:
                os.chown(scratch, uid, uid)
            if self.own_pidns is not None:
                _confine.new_pid_namespace_for_next_child()
            try:
                pid = os.fork()
            except OSError:
                if self.own_pidns is not None:
                    _confine.restore_pid_namespace(self.own_pidns)
                raise
            if pid != 0 and self.own_pidns is not None:
                _confine.restore_pid_namespace(self.own_pidns)
        except OSError as exc:
            os.close(job_fd)
            os.close(out_fd)
            shutil.rmtree(scratch, ignore_errors=True)
            self._send({"t": "exit", "job": job, "status": None, "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            self._job_init(job_fd, out_fd, scratch, uid, dict(request.get("limits", {})))
        os.close(job_fd)
        os.close(out_fd)
        self.jobs[pid] = _Entry(job, scratch)

    def _kill(self, job: str) -> None:
        for pid, entry in self.jobs.items():
            if entry.job == job:
                # In a pid namespace the init's death takes the whole tree; a subreaper init
                # needs SIGTERM so it can sweep its descendants first.
                sig = signal.SIGKILL if self.own_pidns is not None else signal.SIGTERM
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            entry = self.jobs.pop(pid, None)
            if entry is not None:
                shutil.rmtree(entry.scratch, ignore_errors=True)
                self._send({"t": "exit", "job": entry.job, "status": os.waitstatus_to_exitcode(status)})

    def _kill_all(self) -> None:
        for pid in list(self.jobs):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.jobs and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            entry = self.jobs.pop(pid, None)
            if entry is not None:
                shutil.rmtree(entry.scratch, ignore_errors=True)

    # --- in the forked job init (trusted) ------------------------------------------------------

    def _job_init(self, job_fd: int, out_fd: int, scratch: str, uid: int | None,
                  limits: _confine.LimitSpec) -> None:
        try:
            signal.set_wakeup_fd(-1)
            in_namespace = self.own_pidns is not None
            stop = signal.SIGKILL if in_namespace else signal.SIGTERM
            _confine.set_parent_death_signal(stop)
            self.control.close()
            if not in_namespace:
                _confine.set_child_subreaper()
                signal.signal(signal.SIGTERM, _raise_stop)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            child = os.fork()
            if child == 0:
                self._job_process(job_fd, out_fd, scratch, uid, limits)
            os.close(job_fd)
            os.close(out_fd)
            code = _wait_for(child)
            if not in_namespace:
                _sweep_descendants()
            os._exit(code)
        except _Stop:
            _sweep_descendants()
            os._exit(128 + signal.SIGKILL)
        except BaseException:  # noqa: BLE001 - never return into the server loop from a fork
            os._exit(_INIT_FAILED)

    def _job_process(self, job_fd: int, out_fd: int, scratch: str, uid: int | None,
                     limits: _confine.LimitSpec) -> None:
        try:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _rewire_fds(job_fd, out_fd)
            os.chdir(scratch)
            os.environ.clear()
            os.environ.update(self.env)
            _confine.set_limits(limits)
            if uid is not None:
                _confine.drop_to_uid(uid)
            _confine.set_no_new_privs()
            if self.seccomp is not None:
                _confine.load_seccomp_filter(self.seccomp)
            numpy = sys.modules.get("numpy")
            if numpy is not None:
                numpy.random.seed()  # a fresh process would not share the server's RNG state
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
            os._exit(_SETUP_FAILED)
        code = 1
        try:
            code = _runner.serve(socket.socket(fileno=3))
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
            os._exit(code)


class _Stop(Exception):
    pass


def _raise_stop(*_: object) -> None:
    raise _Stop


def _wait_for(child: int) -> int:
    """Reap everything (we may be pid 1) until ``child`` exits; its status as an exit code."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


def _sweep_descendants() -> None:
    """Kill every descendant; orphans reparent to us (subreaper), so repeat until none is left."""
    me = os.getpid()
    for _ in range(10000):
        try:
            with open(f"/proc/{me}/task/{me}/children") as handle:
                children = [int(p) for p in handle.read().split()]
        except OSError:
            children = []
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            while os.waitpid(-1, 0 if children else os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            if not children:
                return


def _rewire_fds(job_fd: int, out_fd: int) -> None:
    """stdin /dev/null, stdout and stderr the output pipe, fd 3 the job socket, nothing else."""
    job_high = fcntl.fcntl(job_fd, fcntl.F_DUPFD, 10)
    out_high = fcntl.fcntl(out_fd, fcntl.F_DUPFD, 10)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_high, 1)
    os.dup2(out_high, 2)
    os.dup2(job_high, 3)
    os.closerange(4, 1 << 20)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True,
                                  errors="backslashreplace")


def main(argv: list[str]) -> int:
    """Worker entry: ``argv[0]`` is the inherited control socket's fd number."""
    control = socket.socket(fileno=int(argv[0]))
    control.set_inheritable(False)
    settings = json.loads(control.recv(1 << 20))
    server = ForkServer(control, settings)
    server.serve()
    return 0
