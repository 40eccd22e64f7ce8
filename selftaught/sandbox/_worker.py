"""The fork server: a warm process that starts one confined process tree per job.

It runs (inside bubblewrap where available) with numpy already imported, and listens on a
SOCK_SEQPACKET control socket from the broker. ``spawn`` carries the job's descriptors (its
message socket, its output pipe, and the pipe for its exit report) as SCM_RIGHTS. The server
hands the first two to a *spare*: a process forked ahead of time as pid 1 of a fresh pid
namespace (so its exit or SIGKILL takes every descendant with it, setsid'd daemons included),
which then confines itself and runs the untrusted code (``_jobstart``, ``_runner``). The server
forks the next spare, reports each job's exit once the whole tree is gone, kills jobs on
request, and wipes their scratch dirs. It never reads job messages: those go straight between
the job and the broker."""

from __future__ import annotations

import contextlib
import gc
import importlib
import itertools
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

from selftaught.sandbox import _cgroup, _confine, _jobstart

__all__ = ["main"]

_PROBE_UID = 65534  # nobody: only used to check that a dropped uid can read the interpreter


@dataclass
class _Entry:
    job: str
    scratch: str
    status_fd: int  # where the exit status goes; the broker waits on it


class ForkServer:
    """Serves spawn/kill requests until the broker closes the control socket."""

    def __init__(self, control: socket.socket, settings: dict[str, Any]) -> None:
        self.control = control
        # Jobs inherit this environment; setting it once here saves each job doing it.
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(settings.get("env", {})).items()})
        self.scratch_root = str(settings["scratch_root"])
        self.jobs: dict[int, _Entry] = {}
        self.notes: list[str] = []
        for name in settings.get("preload", []):
            try:
                importlib.import_module(str(name))
            except Exception as exc:  # a missing optional module is a note, not fatal
                self.notes.append(f"could not preload {name}: {type(exc).__name__}: {exc}")
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()  # the first seeding costs ~25 ms of lazy set-up; pay it once here
        self.own_pidns = _confine.allow_pid_namespaces() if settings.get("pid_namespaces") else None
        self.seccomp: _confine.SeccompProgram | None = None
        if settings.get("seccomp"):
            try:
                self.seccomp = _confine.SeccompProgram(_confine.build_seccomp_filter())
            except Exception as exc:
                self.notes.append(f"seccomp unavailable: {type(exc).__name__}: {exc}")
        self.drop_uid = bool(settings.get("drop_uid")) and os.geteuid() == 0
        self.tmpfs_mb = int(settings.get("tmpfs_mb", 64))
        self.expose = [(str(path), str(cover)) for path, cover in settings.get("expose", [])]
        self.private_mounts = False
        if settings.get("private_mounts"):
            self._try_private_mounts()
        if not self.private_mounts:  # otherwise each job's scratch dir lives in its own tmpfs
            os.makedirs(self.scratch_root, mode=0o711, exist_ok=True)
            os.chmod(self.scratch_root, 0o711)
        self.confinement = _jobstart.Confinement(self.private_mounts, self.tmpfs_mb, self.expose, self.seccomp)
        self.cgroups = self._job_cgroups(settings.get("cgroups"))
        self.busy_cgroups: list[str] = []  # job folders to remove once the kernel lets go of them
        self.cgroup_of: dict[int, str] = {}  # spare or job pid -> its cgroup folders' name
        self.cgroup_names = itertools.count()
        self.spare: tuple[int, socket.socket] | None = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            _confine.set_dumpable(False)
            _confine.set_name("sandbox-worker")
            _confine.set_cmdline("sandbox-worker")
        # Move everything imported so far out of the collector's sight: a job's garbage
        # collections then do not touch (and copy-on-write) the server's objects.
        gc.collect()
        gc.freeze()

    def hello(self) -> dict[str, Any]:
        return {"t": "hello", "pid_namespaces": self.own_pidns is not None,
                "seccomp": self.seccomp is not None, "uid_drop": self.drop_uid,
                "private_mounts": self.private_mounts, "notes": self.notes,
                "cgroups": self.cgroups.version if self.cgroups is not None else 0}

    def _job_cgroups(self, spec: Any) -> _cgroup.JobCgroups | None:
        """Per-job cgroups if the broker gave us folders and they work; only for jobs that drop
        uid 0 (a job keeping uid 0 owns the limit files and could raise its own limits)."""
        if not isinstance(spec, dict):
            return None
        if not self.drop_uid:
            self.notes.append("no cgroup per job: jobs keep uid 0, which could rewrite their own limits")
            return None
        cgroups = _cgroup.JobCgroups(int(spec["version"]), dict(spec["dirs"]), int(spec["memory_bytes"]),
                                     int(spec["max_processes"]))
        try:
            cgroups.check()
        except OSError as exc:
            self.notes.append(f"no cgroup per job: {exc}")
            return None
        return cgroups

    def _try_private_mounts(self) -> None:
        """Try, in a throwaway job-like child, a private mount namespace and the uid drop in it."""
        if self.own_pidns is None:
            self.notes.append("no pid namespace per job, so no private mount namespace either")
            self.drop_uid = False
            return
        _confine.new_pid_namespace_for_next_child()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _confine.private_mounts(1, self.expose)
                code = 2
                if self.drop_uid:
                    _confine.drop_to_uid(_PROBE_UID)
                    with open(os.__file__, "rb"):
                        pass
                code = 0
            finally:
                os._exit(code)
        _confine.restore_pid_namespace(self.own_pidns)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        self.private_mounts = code in (0, 2)
        if not self.private_mounts:
            self.notes.append("jobs cannot get a private mount namespace (read-only host, own /tmp, /proc)")
        if code != 0:
            self.drop_uid = False

    def serve(self) -> None:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_write)
        self._send(self.hello())
        with contextlib.suppress(OSError):
            self._new_spare()  # so that even the first job finds its process waiting
        try:
            while True:
                ready, _, _ = select.select([self.control.fileno(), wake_read], [], [], 1.0)
                if wake_read in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 4096)
                if self.control.fileno() in ready and not self._handle_request():
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
        if request.get("op") == "spawn" and len(fds) == 3:
            self._spawn(request, fds[0], fds[1], fds[2])
        elif request.get("op") == "kill":
            self._kill(str(request["job"]))
        else:
            for fd in fds:
                os.close(fd)
        return True

    def _send(self, message: dict[str, Any]) -> None:
        self.control.send(json.dumps(message).encode())

    def _spawn(self, request: dict[str, Any], job_fd: int, out_fd: int, status_fd: int) -> None:
        job = str(request["job"])
        uid = request.get("uid") if self.drop_uid else None
        scratch = "/tmp/job" if self.confinement.private_mounts else os.path.join(self.scratch_root, f"job-{job}")
        settings = json.dumps({"uid": uid, "limits": request.get("limits", {}), "scratch": scratch}).encode()
        try:
            if not self.confinement.private_mounts:
                os.mkdir(scratch, 0o700)
                if uid is not None:
                    os.chown(scratch, uid, uid)
            pid = self._hand_to_spare(settings, job_fd, out_fd)
        except OSError as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            _report(status_fd, {"status": None, "error": f"could not start the job: {exc}"})
            return
        finally:
            os.close(job_fd)
            os.close(out_fd)
        if self.confinement.private_mounts:
            scratch = ""  # it lives in the job's own tmpfs, which dies with the job
        self.jobs[pid] = _Entry(job, scratch, status_fd)
        with contextlib.suppress(OSError):
            self._new_spare()  # the next job's process, forked off the critical path

    def _hand_to_spare(self, settings: bytes, job_fd: int, out_fd: int) -> int:
        """Give the job to the waiting spare (forking one first if there is none); its pid."""
        for _ in range(2):
            if self.spare is None:
                self._new_spare()
            assert self.spare is not None
            pid, sock = self.spare
            self.spare = None
            try:
                socket.send_fds(sock, [settings], [job_fd, out_fd])
                return pid
            except OSError:
                _kill_tree(pid)  # a spare that cannot take its job is of no use
            finally:
                sock.close()
        raise OSError("no spare job process would take the job")

    def _new_spare(self) -> None:
        # The spare's own cgroup, with its limits; the spare moves itself in (moving a process
        # waits for an RCU grace period, ~10 ms on a loaded machine) before it can take a job,
        # so the limits hold from the job's first instruction.
        name, procs = "", tuple[str, ...]()
        if self.cgroups is not None:
            name = f"s{next(self.cgroup_names)}"
            procs = self.cgroups.enter(name, None)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if self.own_pidns is not None:
            _confine.new_pid_namespace_for_next_child()
        try:
            pid = os.fork()
        except OSError:
            if self.own_pidns is not None:
                _confine.restore_pid_namespace(self.own_pidns)
            ours.close()
            theirs.close()
            self._drop_cgroup(name or None)
            raise
        if pid == 0:
            _jobstart.spare_main(theirs, self.confinement, procs)
        if self.own_pidns is not None:
            _confine.restore_pid_namespace(self.own_pidns)
        theirs.close()
        if name:
            self.cgroup_of[pid] = name
        self.spare = (pid, ours)

    def _kill(self, job: str) -> None:
        for pid, entry in self.jobs.items():
            if entry.job == job:
                _kill_tree(pid)

    def _reap(self) -> None:
        if self.busy_cgroups:
            self._drop_cgroup(None)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and pid == self.spare[0]:
                self.spare[1].close()
                self.spare = None
            entry = self.jobs.pop(pid, None)
            if entry is not None:
                if self.own_pidns is None:
                    _kill_tree(pid)  # without a namespace, at least its process group goes too
                if entry.scratch:
                    shutil.rmtree(entry.scratch, ignore_errors=True)
                name = self.cgroup_of.get(pid)
                limited = self.cgroups.events(name) if self.cgroups is not None and name else {}
                _report(entry.status_fd, {"status": os.waitstatus_to_exitcode(status), **limited})
            self._drop_cgroup(self.cgroup_of.pop(pid, None))

    def _drop_cgroup(self, name: str | None) -> None:
        """Remove an ended job's (or spare's) cgroup folders, and retry ones the kernel still held."""
        if self.cgroups is None:
            return
        pending = self.busy_cgroups + ([name] if name is not None else [])
        self.busy_cgroups = [name for name in pending if not self.cgroups.remove(name)]

    def _kill_all(self) -> None:
        if self.spare is not None:
            _kill_tree(self.spare[0])
        for pid in list(self.jobs):
            _kill_tree(pid)
        deadline = time.monotonic() + 5
        while self.jobs and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            entry = self.jobs.pop(pid, None)
            self._drop_cgroup(self.cgroup_of.pop(pid, None))
            if entry is not None:
                shutil.rmtree(entry.scratch, ignore_errors=True)
                _report(entry.status_fd, {"status": None, "error": "sandbox worker stopped"})


def _report(status_fd: int, status: dict[str, Any]) -> None:
    """Tell the broker a job's tree is gone (a pipe write of a few bytes never blocks)."""
    with contextlib.suppress(OSError):
        os.write(status_fd, json.dumps(status).encode())
    os.close(status_fd)


def _kill_tree(pid: int) -> None:
    """SIGKILL a job: as pid 1 of its namespace its death takes every descendant with it.

    Without a namespace this also kills the job's process group, which a descendant that
    called setsid() escapes; that weaker mode is reported as a missing layer.
    """
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Worker entry: ``argv[0]`` is the inherited control socket's fd number."""
    control = socket.socket(fileno=int(argv[0]))
    control.set_inheritable(False)
    settings = json.loads(control.recv(1 << 20))
    server = ForkServer(control, settings)
    server.serve()
    return 0
