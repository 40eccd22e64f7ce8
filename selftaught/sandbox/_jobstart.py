"""The first moments of a job process: wait for a job as a pre-forked spare, confine, run.

The fork server keeps one spare process forked ahead of time (pid 1 of a fresh pid namespace,
its own process group, and where bubblewrap is absent its own mount namespace), so a job's
critical path holds no fork. The spare waits on its own socket for the job's descriptors and
settings, then locks itself down in this order: descriptors, scratch dir, rlimits, uid (or
capabilities), no_new_privs, seccomp; and only then runs ``_runner`` on the untrusted code.
It never returns: every path ends in ``os._exit``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import NoReturn

from selftaught.sandbox import _confine, _runner

__all__ = ["JOB_NAME", "SETUP_FAILED", "SPARE_NAME", "Confinement", "spare_main"]

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


def spare_main(sock: socket.socket, confinement: Confinement, cgroup_procs: tuple[str, ...] = ()) -> NoReturn:
    """Body of a freshly forked spare; ``sock`` brings the job's fds and settings; ``cgroup_procs``
    are the ``cgroup.procs`` files of the job's cgroups, which the spare joins before anything else."""
    try:
        # Let go of the server's descriptors at once (other jobs' status pipes among them):
        # a spare can wait a long time, and must not keep any of them open meanwhile.
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 20)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # If the server dies, so does the job (and with it the job's pid namespace).
        _confine.set_parent_death_signal(signal.SIGKILL)
        # Its own process group, in the server's session, which has no controlling terminal
        # (bwrap --new-session or start_new_session made it). setsid() here would cost ~3 ms
        # per job: the kernel builds a new scheduler autogroup for every new session.
        os.setpgid(0, 0)
        _confine.set_name(SPARE_NAME)
        for procs in cgroup_procs:  # "0" is the writer; done here, the slow move costs no server time
            with open(procs, "w") as handle:
                handle.write("0")
        if confinement.private_mounts:
            _confine.private_mounts(confinement.tmpfs_mb, confinement.expose)
        data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 2)
        sock.close()
        if not data or len(fds) != 2:
            os._exit(0)  # the server is gone or retired us
        _confine.set_name(JOB_NAME)
        request = json.loads(data)
        uid = request.get("uid")
        _rewire_fds(fds[0], fds[1])
        scratch = str(request["scratch"])
        if confinement.private_mounts:
            os.mkdir(scratch, 0o700)
            if uid is not None:
                os.chown(scratch, uid, uid)
        os.chdir(scratch)
        _confine.set_limits(dict(request.get("limits", {})))
        if uid is not None:
            _confine.drop_to_uid(int(uid))
        else:
            _confine.drop_capabilities()
        _confine.set_no_new_privs()
        if confinement.seccomp is not None:
            confinement.seccomp.load()
        numpy = sys.modules.get("numpy")
        if numpy is not None:  # a fresh process would not share the server's RNG state
            numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
    except BaseException as exc:  # never return into the server loop from a fork
        with contextlib.suppress(BaseException):
            os.write(2, f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
        os._exit(SETUP_FAILED)
    code = 1
    try:
        code = _runner.serve(socket.socket(fileno=3))
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


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
    # sys.stdout and sys.stderr keep their objects (the server never writes to them), now on
    # the pipe; the runner flushes them after every call.
