"""The fork server: the code that runs inside each worker process, keeping confined spares ready.

It runs (inside bubblewrap where available) with numpy already imported, and talks to the broker
over one SOCK_SEQPACKET control socket. Before forking anything it rehearses the job path on a job
of its own (``_jobstart.rehearse``), so every spare inherits that code already specialized by the
interpreter. It keeps ``SPARES_AHEAD`` *spares* ready: processes forked ahead of time, each pid 1
of a fresh pid namespace (so its exit or SIGKILL takes every descendant with it, setsid'd daemons
included), in its own cgroup, and already confined before any job exists (``_jobstart``: rlimits,
its own uid, no_new_privs, seccomp, its scratch dir). For each spare the server makes the job's
message socket, its output pipe and its exit-report pipe. Forking and confining spares is
background work, done at ``BACKGROUND_NICE``; once a spare says on its ready pipe that it is
confined, the server puts it back to nice 0 and hands the broker's ends of its descriptors, and a
pidfd of it, to the broker (``spare`` message, SCM_RIGHTS), so a job goes from the broker straight
to a ready spare without passing through here. Requests from the broker: ``took`` (a spare got a
job: fork its replacement; it also says whether every CPU slot of the sandbox is in demand, which
decides whether the next spares warm up at once) and ``kill``. Once a job's tree is gone the
server wipes its scratch dir and writes the exit report (status, CPU time, cgroup limit counters,
whether it was killed on request) on the report pipe. It never reads job messages."""

from __future__ import annotations

import contextlib
import gc
import importlib
import itertools
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selftaught.sandbox import _cgroup, _confine, _jobstart

__all__ = ["NPROC_MARGIN", "SPARES_AHEAD", "main"]

SPARES_AHEAD = 2
"""Spares each worker keeps forked and confined for the broker while none of its jobs runs."""
BACKGROUND_NICE = 10
"""Nice value of the work that only prepares for later jobs (forking spares, which confine
themselves at it), so running jobs and the broker come first for a CPU. The server puts a spare
back to nice 0 once it says it is ready, before offering it, so a job never waits behind a
running one to start (a spare that waits for its job warms up at nice 19 meanwhile, and is put
back to nice 0 the moment it gets one); a job's CPU-time limits count its own CPU time, so
priority never changes what a job may use."""

NPROC_MARGIN = 8
"""How far RLIMIT_NPROC stays above a job's cgroup ``pids.max`` where jobs have cgroups."""

_PROBE_UID = 65534  # nobody: only used to check that a dropped uid can read the interpreter


@dataclass
class _Child:
    """A spare, and later the job it became."""

    spare: int  # the broker's name for it
    status_fd: int  # where the exit report goes; the broker waits on its other end
    scratch: str  # wiped once the tree is gone ("" when it lives in the job's own tmpfs)
    cgroup: str  # its cgroup folders' name ("" without cgroups)
    baseline: dict[str, int]  # the cgroup's limit counters when it got them
    ready_fd: int = -1  # its ready pipe, until it says it is confined (then it is offered)
    offer: tuple[int, ...] = ()  # the broker's ends of its descriptors, until offered
    taken: bool = False
    killed: bool = False


class ForkServer:
    """Keeps spares ready and serves took/kill requests until the broker closes the control socket."""

    def __init__(self, control: socket.socket, settings: dict[str, Any]) -> None:
        self.control = control
        # Jobs inherit this environment; setting it once here saves each job doing it.
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(settings.get("env", {})).items()})
        self.scratch_root = str(settings["scratch_root"])
        self.children: dict[int, _Child] = {}  # pid -> spare or job
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
        self.uid_base = int(settings.get("uid_base", 0))
        self.uid_count = max(1, int(settings.get("uid_count", 1)))
        self.limits = {str(k): int(v) for k, v in dict(settings.get("limits", {})).items()}
        self.tmpfs_mb = int(settings.get("tmpfs_mb", 64))
        self.expose = [(str(path), str(cover)) for path, cover in settings.get("expose", [])]
        self.private_mounts = False
        if settings.get("private_mounts"):
            self._try_private_mounts()
        if not self.private_mounts:  # otherwise each job's scratch dir lives in its own tmpfs
            os.makedirs(self.scratch_root, mode=0o711, exist_ok=True)
            os.chmod(self.scratch_root, 0o711)
        if not self.drop_uid:
            self.limits.pop("NPROC", None)  # per uid: without a uid of its own it would count the server
        self.cgroups = self._job_cgroups(settings.get("cgroups"))
        if self.cgroups is not None and "NPROC" in self.limits:
            # The kernel checks RLIMIT_NPROC before the job's pids cgroup, and only the cgroup
            # counts the forks it refuses: the rlimit stays a backstop just above ``pids.max``.
            self.limits["NPROC"] += NPROC_MARGIN
        self.names = itertools.count()
        self.busy = False  # the last ``took`` said every CPU slot of the sandbox was in demand
        # Where we may raise priorities back (CAP_SYS_NICE), preparing spares runs in the
        # background; elsewhere everything stays at nice 0. A spare warms up at nice 19 and
        # raises its own priority back to 0 (never above: RLIMIT_NICE 20, inherited) after.
        self.background = _confine.may_raise_priority()
        idle_warm_up = self.background and _confine.allow_nice_zero()
        self.confinement = _jobstart.Confinement(self.private_mounts, self.tmpfs_mb, self.expose, self.seccomp,
                                                 idle_warm_up)
        with contextlib.suppress(OSError, ValueError, IndexError):
            _confine.set_dumpable(False)
            _confine.set_name("sandbox-worker")
            _confine.set_cmdline("sandbox-worker")
        # A bare fork (no CPython at-fork machinery) is only safe while we are the one thread,
        # as we should be; a preloaded module that started a thread gets the careful fork.
        self.fork: Callable[[], int] = _confine.fork_bare
        try:
            threads = len(os.listdir("/proc/self/task"))
        except OSError:
            threads = 0  # cannot tell: the careful fork
        if threads != 1:  # slower, not weaker: said in the worker's log, not as a warning
            self.fork = os.fork
            print(f"sandbox worker: {threads or 'an unknown number of'} threads, so spares are forked with "
                  "os.fork", file=sys.stderr, flush=True)
        # Every spare inherits the job path's code already specialized by the interpreter.
        try:
            _jobstart.rehearse()
        except Exception as exc:  # only a speed-up: jobs run the same without it
            self.notes.append(f"job path not rehearsed: {type(exc).__name__}: {exc}")
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
        try:
            while True:
                self._top_up()
                preparing = {child.ready_fd: pid for pid, child in self.children.items() if child.ready_fd >= 0}
                ready, _, _ = select.select([self.control.fileno(), wake_read, *preparing], [], [], 1.0)
                if wake_read in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 4096)
                if self.control.fileno() in ready and not self._handle_request():
                    return
                self._reap()
                for fd in ready:
                    if fd in preparing and preparing[fd] in self.children:
                        self._ready(preparing[fd])
        finally:
            self._kill_all()

    def _top_up(self) -> None:
        """Fork spares until ``SPARES_AHEAD`` are ready, or just one while a job of ours runs, so
        that forking and confining the others does not take CPU from it (a failed fork is
        retried next round: every exit wakes the loop, and it wakes each second anyway)."""
        running = any(child.taken for child in self.children.values())
        if self._untaken() >= (1 if running else SPARES_AHEAD):
            return
        if self.background:  # the spares forked now inherit this until they get a job
            _confine.set_nice(BACKGROUND_NICE)
        try:
            while self._untaken() < (1 if running else SPARES_AHEAD):
                self._new_spare()
        except OSError:
            pass
        finally:
            if self.background:
                _confine.set_nice(0)

    def _untaken(self) -> int:
        """Spares getting ready or offered and not yet given a job (one that died is reaped)."""
        return sum(not child.taken for child in self.children.values())

    def _handle_request(self) -> bool:
        data = self.control.recv(1 << 12)
        if not data:
            return False
        request = json.loads(data)
        spare = request.get("spare")
        found = next((pid for pid, child in self.children.items() if child.spare == spare), None)
        if request.get("op") == "took":
            self.busy = request.get("busy") is True
            if found is not None:
                self.children[found].taken = True
                if self.background:  # it may be warming up at nice 19: the job must not wait
                    _confine.set_nice(0, found)
        elif request.get("op") == "kill" and found is not None:
            self.children[found].killed = True
            _kill_tree(found)
        return True

    def _send(self, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
        socket.send_fds(self.control, [json.dumps(message).encode()], list(fds))

    def _new_spare(self) -> None:
        """Fork one spare; it is offered to the broker (``_offer``) once it says it is confined."""
        number = next(self.names)
        uid = self.uid_base + number % self.uid_count if self.drop_uid else None
        name, procs, baseline = "", tuple[str, ...](), dict[str, int]()
        if self.cgroups is not None:
            # The spare's own cgroup, with its limits; the spare moves itself in (moving a process
            # waits for an RCU grace period, ~10 ms on a loaded machine) before it says it is ready.
            name, procs, baseline = self.cgroups.acquire()
        scratch = "/tmp/job" if self.private_mounts else os.path.join(self.scratch_root, f"job-{number}")
        opened: list[int] = []
        try:
            if not self.private_mounts:
                os.mkdir(scratch, 0o700)
                if uid is not None:
                    os.chown(scratch, uid, uid)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            opened += [ours.detach(), theirs.detach()]
            opened += os.pipe()  # output: read end for the broker, write end for the job
            opened += os.pipe()  # exit report: read end for the broker, write end kept here
            opened += os.pipe()  # ready: read end kept here, write end for the spare
            # Where every slot is in demand this spare gets a job as soon as it is ready: warming
            # it up would only take CPU from running jobs. Otherwise it warms up at once.
            delay = _jobstart.WARM_UP_AFTER_S if self.busy else 0.0
            pid = self._fork_spare(_jobstart.Spare(opened[1], opened[3], opened[7], scratch, uid, self.limits, delay,
                                                   procs))
        except OSError:
            for fd in opened:
                os.close(fd)
            if not self.private_mounts:
                _remove_scratch(scratch)
            if self.cgroups is not None:
                self.cgroups.release(name, baseline)  # never used
            raise
        offer: tuple[int, ...] = (opened[0], opened[2], opened[4])
        with contextlib.suppress(OSError):  # the broker then waits for the exit report instead
            offer += (os.pidfd_open(pid),)
        self.children[pid] = _Child(number, opened[5], "" if self.private_mounts else scratch, name, baseline,
                                    ready_fd=opened[6], offer=offer)
        for fd in (opened[1], opened[3], opened[7]):
            os.close(fd)

    def _ready(self, pid: int) -> None:
        """The spare ``pid`` wrote on its ready pipe, or closed it by dying (its set-up failed).
        A ready one goes back to nice 0; either way it is offered (``_offer``)."""
        child = self.children[pid]
        try:
            confined = os.read(child.ready_fd, 1) == b"1"
        except OSError:
            confined = False
        os.close(child.ready_fd)
        child.ready_fd = -1
        if confined and self.background:
            _confine.set_nice(0, pid)
        self._offer(child)

    def _offer(self, child: _Child) -> None:
        """Hand the broker its ends of ``child``'s descriptors (once). A spare whose set-up
        failed is offered too: the job that takes it reads why in its output and exit report."""
        offer, child.offer = child.offer, ()
        if not offer:
            return
        try:
            self._send({"t": "spare", "spare": child.spare, "cgroup": child.cgroup, "baseline": child.baseline},
                       offer)
        finally:
            for fd in offer:
                os.close(fd)

    def _fork_spare(self, spare: _jobstart.Spare) -> int:
        if self.own_pidns is not None:
            _confine.new_pid_namespace_for_next_child()
        try:
            pid = self.fork()
            if pid == 0:
                _jobstart.spare_main(spare, self.confinement)  # never returns
        finally:
            if self.own_pidns is not None:
                with contextlib.suppress(OSError):
                    _confine.restore_pid_namespace(self.own_pidns)
        return pid

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            if child.ready_fd >= 0:  # it died before it said it was ready
                os.close(child.ready_fd)
                child.ready_fd = -1
                self._offer(child)
            if self.own_pidns is None:
                _kill_tree(pid)  # without a namespace, at least its process group goes too
            counts = self.cgroups.read(child.cgroup) if self.cgroups is not None else {}
            limited = _cgroup.changes(counts, child.baseline)
            _report(child.status_fd, {"status": os.waitstatus_to_exitcode(status), "killed": child.killed,
                                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 4), **limited})
            if child.scratch:
                _remove_scratch(child.scratch)
            if self.cgroups is not None:  # empty now, and its files are gone with the scratch dir
                self.cgroups.release(child.cgroup, counts)

    def _kill_all(self) -> None:
        for pid in list(self.children):
            _kill_tree(pid)
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            child = self.children.pop(pid, None)
            if child is not None:  # the broker removes the cgroup folders as the sandbox closes
                if child.scratch:
                    _remove_scratch(child.scratch)
                _report(child.status_fd, {"status": None, "error": "sandbox worker stopped"})


def _remove_scratch(path: str) -> None:
    """Remove a job's scratch dir; most jobs leave it empty, so try the one cheap call first.
    ``shutil`` is imported only for a job that left files: it brings in bz2 and lzma, and every
    library mapped in the server makes each fork and exit of a spare dearer."""
    try:
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


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
