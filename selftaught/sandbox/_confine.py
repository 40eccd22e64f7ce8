"""Kernel-level confinement applied by the fork server to itself and to each job process.

Thin wrappers over prctl, unshare/setns, mount, setrlimit, setuid and capset, plus the seccomp
filter itself (built once per worker with pyseccomp, then loaded into each job with one prctl).
The per-job pid namespace is here, and so is a per-job mount namespace for hosts without
bubblewrap. What it leaves out: deciding which of these to use (the worker's settings say) and
the per-worker filesystem view and network cut-off (bubblewrap does those, from outside).
Runs inside the sandbox, so it imports only the standard library (pyseccomp lazily).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import os
import resource
from collections.abc import Callable
from typing import Any

__all__ = [
    "LimitSpec",
    "SeccompProgram",
    "allow_nice_zero",
    "allow_pid_namespaces",
    "build_seccomp_filter",
    "drop_capabilities",
    "drop_to_uid",
    "fork_bare",
    "new_pid_namespace_for_next_child",
    "private_mounts",
    "restore_pid_namespace",
    "set_dumpable",
    "set_limits",
    "set_cmdline",
    "set_name",
    "set_no_new_privs",
    "set_parent_death_signal",
]

LimitSpec = dict[str, int]
"""rlimit name (``AS``, ``CPU``, ``FSIZE``, ``NOFILE``, ``NPROC``, ``CORE``) -> value."""

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NAME = 15
_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_MODE_FILTER = 2
_CLONE_NEWPID = 0x20000000
_NAMESPACE_FLAGS = 0x7E020000  # every CLONE_NEW* bit (ns, cgroup, uts, ipc, user, pid, net)
_TIOCSTI = 0x5412
_PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x1000, 0x4000, 1 << 18
_MNT_DETACH = 2
_SYS_MOUNT_SETATTR = 442  # x86_64 and most other architectures share this number
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 1

_SHARED_STATE_CALLS = (
    "socket", "shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget",
    "semop", "semtimedop", "semctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr",
)
"""Calls that create state another job could reach: sockets, System V IPC, POSIX queues."""

_libc: Any = None
_fork = ctypes.PyDLL(None, use_errno=True).fork  # PyDLL: called with the GIL held
_fork.restype = ctypes.c_int


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _prctl(option: int, value: int, what: str) -> None:
    _check(_c().prctl(option, ctypes.c_ulong(value), 0, 0, 0), what)


def fork_bare() -> int:
    """fork(2) without CPython's at-fork machinery: 0 in the child, its pid in the parent.

    ``os.fork`` takes the import lock around the fork and, in the child, re-initialises the
    interpreter's thread state and runs every ``os.register_at_fork`` hook (``random`` reseeds
    itself from the kernel, ``threading`` rebuilds its locks): about 60 copy-on-write page
    faults and 6% of the sandbox's throughput when every job is a fresh child. None of it is
    needed when the caller is the only thread and holds no lock, which is what the fork server
    is; jobs seed ``random`` and ``numpy.random`` themselves. The call keeps the GIL (``PyDLL``),
    so the child starts holding it, as after ``os.fork``.
    """
    pid = int(_fork())
    if pid < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"fork: {os.strerror(code)}")
    return pid


def set_dumpable(flag: bool) -> None:
    """PR_SET_DUMPABLE: 0 keeps same-uid processes from ptracing us or reading our memory."""
    _prctl(_PR_SET_DUMPABLE, int(flag), "prctl(PR_SET_DUMPABLE)")


def set_name(name: str) -> None:
    """PR_SET_NAME: what ``ps -o comm`` shows (15 bytes at most), so operators can tell
    workers, idle spares and jobs apart."""
    _check(_c().prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0), "prctl(PR_SET_NAME)")


def set_cmdline(name: str) -> None:
    """Overwrite our command line in memory (what ``/proc/PID/cmdline`` shows) with ``name``.

    The worker is pid 1 of its sandbox and every job is forked from it, so without this a job
    reading ``/proc/1/cmdline`` or ``/proc/self/cmdline`` would learn the interpreter's and the
    package's host paths. ``sys.argv`` is a copy and keeps its value.
    """
    with open("/proc/self/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # arg_start and arg_end (fields 48 and 49)
    data = name.encode()[: max(0, end - start - 1)]
    ctypes.memset(start, 0, end - start)
    ctypes.memmove(start, data, len(data))


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: no execve can ever grant privileges again (needed for seccomp)."""
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")


def set_parent_death_signal(signal_number: int) -> None:
    """Have the kernel send ``signal_number`` to us when our parent dies."""
    _prctl(_PR_SET_PDEATHSIG, signal_number, "prctl(PR_SET_PDEATHSIG)")


def allow_pid_namespaces() -> int | None:
    """An fd on our own pid namespace if we may create child namespaces, else None."""
    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        new_pid_namespace_for_next_child()
        restore_pid_namespace(own)
    except OSError:
        os.close(own)
        return None
    return own


def new_pid_namespace_for_next_child() -> None:
    """unshare(CLONE_NEWPID): our next child is pid 1 of a fresh namespace.

    When that child exits the kernel SIGKILLs everything left in its namespace, which is what
    makes the per-job kill impossible to escape with setsid or double forks.
    """
    _check(_c().unshare(_CLONE_NEWPID), "unshare(CLONE_NEWPID)")


def restore_pid_namespace(own_fd: int) -> None:
    """setns back to our own pid namespace, so the next unshare is allowed again."""
    _check(_c().setns(own_fd, _CLONE_NEWPID), "setns(CLONE_NEWPID)")


def may_raise_priority() -> bool:
    """Whether we may lower our priority and raise it back (CAP_SYS_NICE); leaves it at nice 0."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 1)
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        return False
    return os.getpriority(os.PRIO_PROCESS, 0) == 0


def allow_nice_zero() -> bool:
    """Let this process and its children raise their priority back to nice 0 without privilege
    (RLIMIT_NICE 20: never below 0); False where that limit cannot be set."""
    try:
        resource.setrlimit(resource.RLIMIT_NICE, (20, 20))
    except (OSError, ValueError):
        return False
    return True


def set_nice(value: int, pid: int = 0) -> None:
    """Set the nice value of process ``pid`` (0: the calling thread); errors are ignored, as
    priority only decides who waits for a CPU, never what runs or what it is charged."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, value)


# ``signal.signal`` hands back the old handler as an enum member, and converting a Python
# function that way goes through an exception in the enum machinery: in a freshly forked process
# its first use costs about 0.15 ms of copy-on-write page faults. The C function underneath does not.
_set_handler: Callable[[int, Any], Any] = importlib.import_module("_signal").signal


def set_handler(signum: int, handler: Any) -> None:
    """``signal.signal(signum, handler)`` without the enum conversion of its result (``SIG_DFL``
    and ``SIG_IGN`` are passed as the plain ints the C function wants)."""
    _set_handler(int(signum), int(handler) if isinstance(handler, int) else handler)


def set_limits(limits: LimitSpec) -> None:
    """Apply soft = hard rlimits, except CPU whose hard limit is one second later (SIGKILL)."""
    for name, value in limits.items():
        which = getattr(resource, f"RLIMIT_{name}")
        hard = value + 1 if name == "CPU" else value
        resource.setrlimit(which, (value, hard))


def drop_to_uid(uid: int) -> None:
    """Become ``uid``/``uid`` with no supplementary groups; this also clears every capability."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.geteuid() != uid or os.getegid() != uid:
        raise OSError(errno.EPERM, "uid drop did not take effect")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Empty the bounding set, then every capability set, for a job that keeps uid 0.

    The bounding set matters: a uid-0 process regains capabilities on execve from it.
    """
    for cap in range(64):
        if _c().prctl(_PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            if ctypes.get_errno() == errno.EINVAL:
                break  # past the last capability this kernel knows
            _check(-1, "prctl(PR_CAPBSET_DROP)")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_c().capset(ctypes.byref(header), data), "capset")


def private_mounts(tmpfs_mb: int, expose: list[tuple[str, str]]) -> None:
    """A mount namespace of our own: host tree read-only, a fresh tmpfs /tmp, our own /proc.

    Used when bubblewrap is not: the job (pid 1 of its namespace) then sees only its own
    processes, cannot write the host filesystem, and its disk use is bounded by the tmpfs.
    ``expose`` pairs a path the job needs (the interpreter) with the ancestor that hides it
    from other uids (``/root``, mode 0700): that ancestor is covered by an empty tmpfs with
    only the path bound back in, so a dropped uid can read the interpreter but nothing else
    of the covered directory.
    """
    _check(_c().unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    _read_only("/")
    # Hold each exposed path by descriptor before the tmpfs mounts below can hide it (a venv
    # under /tmp, pyenv under /root), then bind it back from /proc/self/fd.
    held = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path, _ in expose]
    _mount(b"tmpfs", "/tmp", b"tmpfs", _MS_NOSUID | _MS_NODEV, f"size={tmpfs_mb}m,mode=1777".encode())
    covers = sorted({cover for _, cover in expose} - {"/tmp"})
    for cover in covers:
        _mount(b"tmpfs", cover, b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=1m,mode=0755")
    for (path, _), fd in zip(expose, held, strict=True):
        os.makedirs(path, 0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}".encode(), path, None, _MS_BIND | _MS_REC, None)
        os.close(fd)
        _read_only(path)
    for cover in covers:
        _read_only(cover)
    _mount(b"proc", "/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)


def _read_only(path: str) -> None:
    attr = (ctypes.c_uint64 * 4)(_MOUNT_ATTR_RDONLY, 0, 0, 0)
    result = _c().syscall(_SYS_MOUNT_SETATTR, -100, path.encode(), _AT_RECURSIVE, ctypes.byref(attr),
                          ctypes.sizeof(attr))
    _check(0 if result == 0 else -1, f"mount_setattr({path}, read-only)")


def _mount(source: bytes | None, target: str, kind: bytes | None, flags: int, data: bytes | None) -> None:
    result = _c().mount(source, target.encode(), kind, ctypes.c_ulong(flags), data)
    _check(result, f"mount {target}")


def build_seccomp_filter(optimize: bool = True) -> bytes:
    """Compile the job filter to raw BPF: deny escapes with EPERM, allow everything else.

    Denied: every new socket (``socket()`` of any family, AF_UNIX included, so two jobs cannot
    meet on an abstract-namespace or filesystem socket; ``socketpair`` stays, it names nothing
    another process can reach, and the job's own channel is inherited), System V IPC and POSIX
    message queues (objects that would outlive the job in the worker's IPC namespace and be
    visible to the next job), ptrace and cross-process memory access, namespace and mount calls
    (and clone with any CLONE_NEW* flag), bpf, perf_event_open, userfaultfd, keyring calls,
    io_uring, kexec and kernel modules, and the TIOCSTI terminal-injection ioctl.
    clone3 fails with ENOSYS so libc falls back to clone, whose flags the filter can inspect.
    ``optimize``: lay the syscall numbers out as a binary tree (the same decisions, half the load time).
    """
    import pyseccomp as sc  # a dependency, imported lazily so the broker side does not need it

    deny = sc.ERRNO(errno.EPERM)
    filt = sc.SyscallFilter(sc.ALLOW)
    # Syscall numbers as a binary tree rather than a list (libseccomp >= 2.5): the same rules, but
    # each job loads the filter in half the time (~65 instead of ~125 us here), since the kernel
    # runs it once per syscall number at load to build its cache of always-allowed calls.
    if optimize:
        with contextlib.suppress(OSError, ValueError, RuntimeError, AttributeError):
            filt.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    filt.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    for bit in range(32):  # rules for one syscall are OR'ed: deny clone if any CLONE_NEW* bit is set
        if _NAMESPACE_FLAGS >> bit & 1:
            filt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, 1 << bit, 1 << bit))
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # The job must keep dying with its fork server (only matters outside bwrap).
    filt.add_rule(deny, "prctl", sc.Arg(0, sc.EQ, _PR_SET_PDEATHSIG))
    for name in (
        "ptrace", "process_vm_readv", "process_vm_writev", "personality", "unshare", "setns",
        "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig", "move_mount",
        "open_tree", "mount_setattr", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
        "request_key", "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
        "name_to_handle_at", "acct", "swapon", "swapoff", "reboot", "syslog", "quotactl",
        *_SHARED_STATE_CALLS,
    ):
        try:
            filt.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):
            continue  # a syscall this kernel or libseccomp does not know cannot be called either
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb", closefd=True) as sink:
            filt.export_bpf(sink)
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    return b"".join(chunks)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompProgram:
    """A BPF program laid out for the kernel once, so each job installs it with one prctl."""

    def __init__(self, program: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(len(program) // 8, ctypes.addressof(self._buffer))

    def load(self) -> None:
        """Install the filter in this process (irreversible); needs no_new_privs first."""
        result = _c().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(self._fprog), 0, 0)
        _check(result, "prctl(PR_SET_SECCOMP)")
