"""How a worker process is started: its environment, its command line, and the bubblewrap probe.

With bubblewrap, each worker runs inside one long-lived ``bwrap`` sandbox: new network, pid, IPC,
UTS and cgroup namespaces, a private size-bounded tmpfs ``/tmp`` (the jobs' scratch space lives
there), read-only ``/usr``, interpreter prefix, venv and the ``selftaught`` package directory, and
nothing else of the host. Without it the worker runs directly, with the same empty environment.
This module only builds argv lists and probes; starting and talking to workers is ``_worker_handle``.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CGROUP_MOUNT",
    "SANDBOX_ENV",
    "HostReport",
    "bwrap_prefix",
    "hidden_paths",
    "probe",
    "readable_by_everyone",
    "through_args_fd",
    "worker_command",
]

SANDBOX_ENV: dict[str, str] = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
"""The whole environment of every worker and job: nothing is inherited from the broker."""

PACKAGE_DIR = Path(__file__).resolve().parents[1]
BOOT_SCRIPT = Path(__file__).resolve().with_name("_boot.py")
BWRAP_SCRATCH_ROOT = "/tmp/jobs"

# Capabilities the worker keeps inside bwrap (its jobs drop every one by changing uid):
# SYS_ADMIN for a pid namespace per job, SETUID/SETGID for the uid drop, KILL to stop jobs
# running under other uids, CHOWN/FOWNER/DAC_OVERRIDE to hand out and wipe scratch dirs.
_WORKER_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_FOWNER",
                "CAP_DAC_OVERRIDE", "CAP_SYS_NICE", "CAP_SYS_RESOURCE")


@dataclass(frozen=True)
class HostReport:
    """What the host offers the sandbox, found once per process by ``probe``."""

    bubblewrap: bool
    bubblewrap_error: str
    root: bool
    interpreter_readable: bool


def _read_only_paths() -> list[str]:
    paths = [sys.base_prefix, sys.prefix, str(PACKAGE_DIR)]
    real_python = os.path.realpath(sys.executable)
    if not any(real_python.startswith(p + os.sep) for p in paths):
        paths.append(os.path.dirname(real_python))
    unique: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths} | {os.path.abspath(p) for p in paths}):
        if not any(path == u or path.startswith(u + os.sep) for u in unique):
            unique.append(path)
    return unique


CGROUP_MOUNT = "/run/selftaught-cgroup"
"""Where a worker inside bwrap finds its cgroup folders (one subfolder per controller)."""


def bwrap_prefix(tmpfs_mb: int, binds: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The ``bwrap ... --`` part of a worker's command line; ``binds`` are extra (host, inside)
    read-write mounts (the worker's cgroup folders)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    # --as-pid-1: the worker itself is pid 1 (bwrap's own process, whose command line would name
    # every mount, stays outside), and it rewrites its command line (``_confine.set_cmdline``).
    argv = [bwrap, "--unshare-ipc", "--unshare-pid", "--as-pid-1", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if os.geteuid() != 0:
        argv.append("--unshare-user")
    for cap in _WORKER_CAPS:
        argv += ["--cap-add", cap]
    argv.append("--clearenv")
    for key, value in SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / top
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), str(host)]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    # The private /tmp comes before the binds, so an interpreter or venv under /tmp stays visible.
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    made = {"/", "/usr", "/tmp"}
    for path in _read_only_paths():
        # bwrap creates missing parents with mode 0700, which a dropped uid cannot traverse.
        for parent in reversed(Path(path).parents):
            if str(parent) not in made and not str(parent).startswith("/usr/"):
                argv += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        argv += ["--ro-bind", path, path]
        made.add(path)
    for host_path, inside in binds:
        argv += ["--bind", host_path, inside]
    argv += ["--chdir", "/tmp", "--"]
    return argv


def worker_command(use_bwrap: bool, control_fd: int, tmpfs_mb: int,
                   binds: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The full argv of a worker whose control socket is inherited as ``control_fd``."""
    python = [sys.executable, "-I", "-B", str(BOOT_SCRIPT), str(control_fd)]
    return bwrap_prefix(tmpfs_mb, binds) + python if use_bwrap else python


def through_args_fd(argv: list[str], fd: int) -> tuple[list[str], bytes]:
    """``argv`` (a bwrap command line) as ``[bwrap, --args, FD, --, COMMAND...]`` plus the bytes of
    bwrap's options to put on FD, so that ``ps`` on the host shows a short line, not every mount."""
    split = argv.index("--")
    options = b"".join(arg.encode() + b"\0" for arg in argv[1:split])
    return [argv[0], "--args", str(fd), *argv[split:]], options


def readable_by_everyone(path: str) -> bool:
    """Whether an unrelated uid can reach and read ``path`` (every parent traversable)."""
    current = Path(path).resolve()
    for directory in [*reversed(current.parents), current]:
        try:
            mode = directory.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH or (directory == current and not mode & stat.S_IROTH):
            return False
    return True


def hidden_paths() -> list[tuple[str, str]]:
    """(path, cover) for each interpreter path other uids cannot reach, and the topmost
    ancestor that hides it (e.g. pyenv under a mode-0700 /root)."""
    hidden: list[tuple[str, str]] = []
    for path in _read_only_paths():
        if path.startswith("/tmp/"):  # the job's private /tmp would hide it
            hidden.append((path, "/tmp"))
            continue
        current = Path(path)
        for directory in [*reversed(current.parents), current][1:]:
            try:
                mode = directory.stat().st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH and directory != current:
                hidden.append((path, str(directory)))
                break
    return hidden


@functools.cache
def probe() -> HostReport:
    """Try the real bwrap command line once (about 6 ms) and look at the interpreter's modes."""
    error = ""
    if shutil.which("bwrap") is None:
        error = "bwrap is not installed (apt-get install bubblewrap)"
    else:
        try:
            done = subprocess.run(bwrap_prefix(16) + ["/usr/bin/true"], env=dict(SANDBOX_ENV),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
            if done.returncode != 0:
                lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
                error = f"bwrap failed (exit {done.returncode}): {lines[-1]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            error = f"bwrap could not run: {exc}"
    readable = all(readable_by_everyone(p) for p in _read_only_paths())
    return HostReport(bubblewrap=not error, bubblewrap_error=error, root=os.geteuid() == 0,
                      interpreter_readable=readable)
