"""The first moments of a job process: confine a freshly forked spare, wait for its job, run it.

The fork server forks each spare ahead of time (pid 1 of a fresh pid namespace, its own process
group, and where bubblewrap is absent its own mount namespace) with its job socket and output
pipe already made. The spare locks itself down at once, before any job exists, in this order:
descriptors, cgroup, scratch dir, rlimits, uid (or capabilities), no_new_privs, seccomp. It
tells the server it is ready (one byte on its ready pipe, then closes it: only then does the
server offer it to the broker) and waits on its socket, where the broker sends the job directly;
a spare that waits longer than its ``warm_up_after_s`` (0 or ``WARM_UP_AFTER_S``) warms up
meanwhile. Only what depends on the job is left for then: its CPU-time rlimit (lowering a limit
needs no privilege) and the process name.
It never returns: every path ends in ``os._exit``.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import resource
import select
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

from selftaught.sandbox import _confine, _runner, _wire

__all__ = ["JOB_NAME", "REHEARSALS", "SETUP_FAILED", "SPARE_NAME", "WARM_UP_AFTER_S", "WARM_UP_NICE", "Confinement",
           "Spare", "rehearse", "spare_main"]

_exit = os._exit  # bound before any job runs: a job replacing ``os._exit`` still exits here

_JOB_FD = 3  # the job socket's number in the spare
_READY_FD = 4  # the ready pipe's number in the spare (closed once it has said it is ready)

WARM_UP_AFTER_S = 0.002
"""How long a spare forked while every CPU slot of the sandbox was in demand waits for its job
before it warms up (``_warm_up``); one forked while a slot was free warms up at once (the
server decides, ``Spare.warm_up_after_s``). Where jobs queue for slots a spare gets its job
within this time, and warming it would only take CPU from running jobs; where they come one
after another with a little time between them (a caller's loop), a spare that warms up at
once is warm when its job comes."""
WARM_UP_NICE = 19
"""Nice value of the warm-up, where the worker may raise priorities again: idle CPU only."""

SETUP_FAILED = 71
"""Exit code of a job process whose confinement failed (the broker reports it as such)."""
SPARE_NAME = "sandbox-spare"
JOB_NAME = "sandbox-job"
"""Process names (``ps -o comm``) of an idle spare and of a running job."""


@dataclass(frozen=True)
class Confinement:
    """What every job of a worker gets, decided once when the worker starts."""

    private_mounts: bool
    tmpfs_mb: int
    expose: list[tuple[str, str]]
    seccomp: _confine.SeccompProgram | None
    idle_warm_up: bool = False  # spares may lower their priority and raise it back (RLIMIT_NICE)


@dataclass(frozen=True)
class Spare:
    """What one spare gets from the fork server: its job socket and output pipe (fd numbers in
    the server), scratch dir, uid (None: keep uid 0 without capabilities), rlimits but CPU, and
    the ``cgroup.procs`` files of its cgroups, which it joins before anything else."""

    job_fd: int
    out_fd: int
    ready_fd: int  # where it says it is confined (the server offers it only then)
    scratch: str
    uid: int | None
    limits: dict[str, int]
    warm_up_after_s: float  # how long it waits for its job before it warms up: 0 or WARM_UP_AFTER_S
    cgroup_procs: tuple[str, ...]


def spare_main(spare: Spare, confinement: Confinement) -> NoReturn:
    """Body of a freshly forked spare: confine, then serve the job that arrives on its socket."""
    try:
        _confine.set_name(SPARE_NAME)
        # Keep only the job's two descriptors and the ready pipe, at their final numbers: stdin
        # /dev/null, stdout and stderr the output pipe, fd 3 the job socket, fd 4 the ready pipe.
        # Other spares' and jobs' descriptors (their exit-report pipes among them) are gone
        # before this spare can wait long.
        _rewire_fds(spare.job_fd, spare.out_fd, spare.ready_fd)
        signal.set_wakeup_fd(-1)
        _confine.set_handler(signal.SIGCHLD, signal.SIG_DFL)
        # If the server dies, so does the job (and with it the job's pid namespace).
        _confine.set_parent_death_signal(signal.SIGKILL)
        # Its own process group, in the server's session, which has no controlling terminal
        # (bwrap --new-session or start_new_session made it). setsid() here would cost ~3 ms
        # per job: the kernel builds a new scheduler autogroup for every new session.
        os.setpgid(0, 0)
        for procs in spare.cgroup_procs:  # "0" is the writer; the limits hold before any job code
            fd = os.open(procs, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)
        if confinement.private_mounts:
            _confine.private_mounts(confinement.tmpfs_mb, confinement.expose)
            os.mkdir(spare.scratch, 0o700)
            if spare.uid is not None:
                os.chown(spare.scratch, spare.uid, spare.uid)
        os.chdir(spare.scratch)
        _confine.set_limits(spare.limits)
        if spare.uid is not None:
            _confine.drop_to_uid(spare.uid)
        else:
            _confine.drop_capabilities()
        _confine.set_no_new_privs()
        if confinement.seccomp is not None:
            confinement.seccomp.load()
        os.write(_READY_FD, b"1")  # the server offers us to the broker now
        os.close(_READY_FD)
        if not _job_waiting(spare.warm_up_after_s):
            _warm_up(confinement.idle_warm_up)
    except BaseException as exc:  # never return into the server loop from a fork
        with contextlib.suppress(BaseException):
            os.write(2, f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
        _exit(SETUP_FAILED)
    code = 1
    # Named, so the socket lives until ``_exit``: a socket collected while open first formats
    # itself for a ResourceWarning, at the cost of two system calls. Its kind is given, which
    # saves two more that would ask the kernel.
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, _JOB_FD)
    try:
        code = _runner.serve(channel, _begin)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        # A job that gets this far without exiting (it rebound ``_exit`` too) lingers until the
        # broker's reaper kills it, a second after its last result.
        _exit(code)


_WARM_UP_SOURCE = """
import math
import sys


def f(x):
    value = [math.sqrt(x), {"k": (1, "a")}, sorted(str(i) for i in range(5))]
    np = sys.modules.get("numpy")  # only where the worker preloads it
    if np is not None:
        a = np.arange(8.0)
        value += [float(a.sum()), float(a.mean()), float((a * a).max()), a.tolist()]
    return value
"""
_WARM_UP_JOB = {"source": _WARM_UP_SOURCE, "entry": "f", "seed": 1, "modules": [], "calls": [[4.0]],
                "cpu_limit_s": 60.0}
_WARM_UP_FRAMES = _wire.encode({"cpu_rlimit_s": None}) + _wire.encode(_WARM_UP_JOB)
REHEARSALS = 30
"""How many times the fork server runs the warm-up job through the job path (``rehearse``)."""


def rehearse() -> None:
    """Run the whole job path (``_runner.serve``) ``REHEARSALS`` times on the harmless warm-up job, in
    the fork server before it forks any spare. CPython 3.11's adaptive interpreter rewrites a
    function's bytecode during its first calls (warm-up counters, then specialized
    instructions); done here once, every spare inherits the specialized code instead of
    rewriting it in each job (slower generic code and copy-on-write faults): about 0.2 ms
    less CPU per job. The server keeps nothing of it: the candidate module is dropped, the CPU
    timer's handler put back to the default, and what each run froze unfrozen for collection."""
    try:
        for _ in range(REHEARSALS):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            with ours, theirs:
                theirs.sendall(_WARM_UP_FRAMES)
                _runner.serve(ours)  # its few replies wait in the socket's buffer
    finally:
        _confine.set_handler(signal.SIGPROF, signal.SIG_DFL)
        sys.modules.pop("candidate", None)
        gc.unfreeze()


def _warm_up(idle: bool) -> None:
    """Go once through what every job's start goes through, on a harmless job of our own over a
    socket pair: receive and decode its frames, compile and load the source, flush the output,
    set up the CPU timer, send ``ready`` and ``start``, make a timed call, encode and send its
    result, collect garbage. The copy-on-write page faults that costs (a few hundred: about
    0.8 ms of a job's wall time here) then happen while the spare waits, not after its job
    arrives. The real job replaces everything this left (module, seeds, the timer's handler).

    It stops between its steps once the job has come, and with ``idle`` it runs at
    ``WARM_UP_NICE`` (the spare may raise its priority back): it uses idle CPU only, so under
    load, where spares get their jobs within milliseconds, it costs the jobs almost no CPU (the
    server puts a spare that got its job back to nice 0 at once, on ``took``). The spare is at
    nice 0 again before any job code runs."""
    if idle:
        _confine.set_nice(WARM_UP_NICE)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if _job_waiting(0):
            return
        theirs.sendall(_WARM_UP_FRAMES)
        _wire.recv(ours)
        job = _wire.recv(ours)
        function, _ = _runner._load(job)
        if function is None or _job_waiting(0):
            return
        _runner._flush()
        _runner._TIMER.install()  # and back to the default below: a job without a CPU limit has none
        try:
            if _job_waiting(0):
                return
            channel = _runner._Channel(ours)
            channel.send({"t": "ready"}, {"t": "start"})
            channel.send_frames(_runner._one_call(function, job["calls"][0], job["cpu_limit_s"]))
        finally:
            _confine.set_handler(signal.SIGPROF, signal.SIG_DFL)
        if _job_waiting(0):
            return
        gc.collect()
    finally:
        ours.close()
        theirs.close()
        if idle:
            os.setpriority(os.PRIO_PROCESS, 0, 0)  # allowed by RLIMIT_NICE; a failure fails the spare


def _job_waiting(timeout_s: float) -> bool:
    """Whether the job has come (waiting up to ``timeout_s`` for it)."""
    return bool(select.select([_JOB_FD], [], [], timeout_s)[0])


def _begin(settings: dict[str, Any]) -> None:
    """What depends on the job, done when it arrives and before any of its code runs."""
    _confine.set_name(JOB_NAME)
    cpu = settings.get("cpu_rlimit_s")
    if isinstance(cpu, int) and cpu > 0:  # soft: SIGXCPU; a second later the kernel sends SIGKILL
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _rewire_fds(job_fd: int, out_fd: int, ready_fd: int) -> None:
    """stdin /dev/null, stdout and stderr the output pipe, fd 3 the job socket, fd 4 the ready
    pipe (closed before any job arrives), nothing else."""
    job_high = fcntl.fcntl(job_fd, fcntl.F_DUPFD, 10)
    out_high = fcntl.fcntl(out_fd, fcntl.F_DUPFD, 10)
    ready_high = fcntl.fcntl(ready_fd, fcntl.F_DUPFD, 10)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_high, 1)
    os.dup2(out_high, 2)
    os.dup2(job_high, _JOB_FD)
    os.dup2(ready_high, _READY_FD)
    os.closerange(_READY_FD + 1, 1 << 20)
    # sys.stdout and sys.stderr keep their objects (the server never writes to them), now on
    # the pipe; the runner flushes them after every call.
