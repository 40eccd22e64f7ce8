"""The job's seccomp filter, decided instruction by instruction: a small classic-BPF interpreter
runs the filter exactly as built for the kernel on every x86-64 syscall number and on the
arguments its rules look at. The filter is laid out as a binary tree of syscall numbers (it loads
in half the time); it must decide every call exactly as the plain list of the same rules does, and
deny what the sandbox promises to deny."""

from __future__ import annotations

import errno
import struct

import pytest

from selftaught.sandbox import _confine

pytest.importorskip("pyseccomp")

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
ALLOW = 0x7FFF0000
KILL_THREAD = 0
X32 = 0x40000000  # x32 syscalls: x86-64's arch with this bit in the number
ERRNO = 0x00050000
DENY = ERRNO | errno.EPERM
SYSCALLS = range(470)
CLONE, CLONE3, IOCTL, PRCTL, SOCKET, SOCKETPAIR, READ, PTRACE = 56, 435, 16, 157, 41, 53, 0, 101
TIOCSTI = 0x5412
# x86-64 numbers of what the README says the filter refuses, and of everyday calls it must allow.
REFUSED = {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "unshare": 272, "setns": 308,
           "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "bpf": 321, "perf_event_open": 298,
           "userfaultfd": 323, "keyctl": 250, "add_key": 248, "io_uring_setup": 425, "kexec_load": 246,
           "init_module": 175, "shmget": 29, "msgget": 68, "semget": 64, "mq_open": 240}
ALLOWED = {"read": 0, "write": 1, "openat": 257, "mmap": 9, "getpid": 39, "socketpair": 53, "exit_group": 231,
           "wait4": 61, "kill": 62}


def run_filter(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64) -> int:
    """What the kernel would decide: classic BPF over ``struct seccomp_data``."""
    full = (list(args) + [0] * 6)[:6]
    data = struct.pack("<IIQ6Q", nr, arch, 0, *full)
    code = [struct.unpack_from("<HBBI", program, at) for at in range(0, len(program), 8)]
    a = x = 0
    memory = [0] * 16
    pc = 0
    while True:
        op, jt, jf, k = code[pc]
        pc += 1
        if op == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif op == 0x00:  # ld #k
            a = k
        elif op == 0x60:  # ld M[k]
            a = memory[k]
        elif op == 0x61:  # ldx M[k]
            x = memory[k]
        elif op == 0x02:  # st M[k]
            memory[k] = a
        elif op == 0x03:  # stx M[k]
            memory[k] = x
        elif op == 0x54:  # and #k
            a &= k
        elif op == 0x07:  # tax
            x = a
        elif op == 0x87:  # txa
            a = x
        elif op == 0x05:  # ja
            pc += k
        elif op in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset #k
            taken = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[op]
            pc += jt if taken else jf
        elif op == 0x06:  # ret #k
            return k
        elif op == 0x16:  # ret a
            return a
        else:
            raise AssertionError(f"instruction {op:#x} not modelled")


def cases() -> list[tuple[int, tuple[int, ...]]]:
    found: list[tuple[int, tuple[int, ...]]] = [(nr, ()) for nr in SYSCALLS] + [(nr | X32, ()) for nr in SYSCALLS]
    for bit in range(32):
        found.append((CLONE, (1 << bit,)))
        found.append((CLONE, (1 << bit | 0x11,)))  # with SIGCHLD, as fork(2) passes it
    found += [(CLONE, (0x7E020000,)), (CLONE, (0x01200011,))]  # every CLONE_NEW*; glibc's fork
    for request in (TIOCSTI, TIOCSTI | 1 << 32, 0x5413, 0x541B, 0):
        found.append((IOCTL, (0, request)))
    for option in range(60):
        found.append((PRCTL, (option, 9)))
    return found


@pytest.fixture(scope="module")
def programs() -> tuple[bytes, bytes]:
    return _confine.build_seccomp_filter(), _confine.build_seccomp_filter(optimize=False)


def test_the_tree_decides_every_call_as_the_list_does(programs: tuple[bytes, bytes]) -> None:
    tree, listed = programs
    assert tree != listed, "the optimized layout was not applied"
    differ = [(nr, args) for nr, args in cases() if run_filter(tree, nr, args) != run_filter(listed, nr, args)]
    assert differ == []
    for nr in (READ, SOCKET, CLONE):
        assert run_filter(tree, nr, arch=AUDIT_ARCH_I386) == run_filter(listed, nr, arch=AUDIT_ARCH_I386)


def test_the_filter_denies_what_the_sandbox_promises(programs: tuple[bytes, bytes]) -> None:
    tree, _ = programs
    assert run_filter(tree, SOCKET, (2, 1, 0)) == DENY  # any new socket, AF_INET here
    assert run_filter(tree, SOCKET, (1, 1, 0)) == DENY  # AF_UNIX too
    assert run_filter(tree, SOCKETPAIR, (1, 1, 0)) == ALLOW
    assert {name: run_filter(tree, nr) for name, nr in REFUSED.items()} == dict.fromkeys(REFUSED, DENY)
    assert {name: run_filter(tree, nr) for name, nr in ALLOWED.items()} == dict.fromkeys(ALLOWED, ALLOW)
    assert run_filter(tree, PTRACE, (16,)) == DENY
    assert run_filter(tree, CLONE3) == ERRNO | errno.ENOSYS  # libc falls back to clone
    assert run_filter(tree, CLONE, (0x01200011,)) == ALLOW  # a plain fork
    for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x04000000, 0x08000000, 0x02000000):
        assert run_filter(tree, CLONE, (flag | 0x11,)) == DENY, hex(flag)  # user, pid, net, ns, uts, ipc, cgroup
    assert run_filter(tree, IOCTL, (0, TIOCSTI)) == DENY
    assert run_filter(tree, IOCTL, (0, 0x5413)) == ALLOW  # TIOCGWINSZ
    assert run_filter(tree, PRCTL, (1, 0)) == DENY  # PR_SET_PDEATHSIG: the job must die with its server
    assert run_filter(tree, PRCTL, (15, 0)) == ALLOW  # PR_SET_NAME
    assert run_filter(tree, READ) == ALLOW
    assert run_filter(tree, READ, arch=AUDIT_ARCH_I386) == KILL_THREAD  # no 32-bit syscalls
    assert run_filter(tree, SOCKET | X32, (2, 1, 0)) != ALLOW  # nor the x32 way around the numbers
