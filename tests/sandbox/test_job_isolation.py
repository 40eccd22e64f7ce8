"""Nothing shared between jobs and nothing beyond a job's limits: System V IPC, POSIX queues and new
sockets are denied, pid 1's command line names no host path, and a job's memory and process
count are bounded for its whole process tree (a cgroup per job, where the host offers one)."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from selftaught.config import SandboxConfig
from selftaught.records import Job, Outcome
from selftaught.sandbox import ForkServerSandbox, _cgroup
from selftaught.sandbox._forkserver_main import SPARES_AHEAD


def attack(box: ForkServerSandbox, source: str, *args: Any, timeout_s: float = 10.0) -> Outcome:
    return box.run(Job(source=source, entry="f", calls=(tuple(args),), call_timeout_s=timeout_s))


def value(outcome: Outcome) -> Any:
    assert outcome.ok and outcome.results[0].ok, outcome
    return outcome.results[0].value


IPC_PROBE = '''
import ctypes, errno, os, socket
def f():
    libc = ctypes.CDLL(None, use_errno=True)
    seen = {}
    seen["shmget"] = libc.shmget(0, 64 << 20, 0o1666) == -1 and ctypes.get_errno()
    seen["msgget"] = libc.msgget(0, 0o1666) == -1 and ctypes.get_errno()
    seen["semget"] = libc.semget(0, 1, 0o1666) == -1 and ctypes.get_errno()
    librt = ctypes.CDLL("librt.so.1", use_errno=True)
    seen["mq_open"] = librt.mq_open(b"/selftaught-probe", os.O_CREAT | os.O_RDWR, 0o666, None) == -1 \\
        and ctypes.get_errno()
    for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_NETLINK):
        try:
            socket.socket(family, socket.SOCK_STREAM if family != socket.AF_NETLINK else socket.SOCK_RAW)
            seen[str(family)] = 0
        except OSError as exc:
            seen[str(family)] = exc.errno
    a, b = socket.socketpair()  # names nothing another process could reach: allowed
    a.sendall(b"x")
    seen["socketpair"] = b.recv(1) == b"x"
    return seen
'''


def test_ipc_objects_and_new_sockets_are_denied(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    seen = value(attack(sandbox, IPC_PROBE))
    import errno
    assert seen.pop("socketpair") is True
    assert set(seen.values()) == {errno.EPERM}, seen


def test_two_jobs_cannot_meet_on_an_abstract_socket(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    listener = '''
import socket
def f():
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("\\0selftaught-rendezvous")
        s.listen(1)
        s.settimeout(3)
        return s.accept()[0].recv(100).decode()
    except OSError as exc:
        return type(exc).__name__
'''
    talker = '''
import socket, time
def f(secret):
    for _ in range(20):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect("\\0selftaught-rendezvous")
            s.sendall(secret.encode())
            return "sent"
        except OSError as exc:
            last = type(exc).__name__
            time.sleep(0.1)
    return last
'''
    results: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: results.update(listener=value(attack(sandbox, listener))))
    thread.start()
    results["talker"] = value(attack(sandbox, talker, "hidden-split-args"))
    thread.join()
    assert results == {"listener": "PermissionError", "talker": "PermissionError"}


def test_pid_1_command_line_names_no_host_path(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = ("def f():\n    return [open(f'/proc/{p}/cmdline', 'rb').read().decode(errors='replace')"
              " for p in (1, 'self')]\n")
    for cmdline in value(attack(sandbox, source)):
        assert [part for part in cmdline.split("\0") if part] == ["sandbox-worker"], cmdline


def _cgroup_box(config: SandboxConfig, bubblewrap: bool) -> ForkServerSandbox:
    box = ForkServerSandbox(dataclasses.replace(config, workers=1, memory_mb=384, max_processes=24),
                            bubblewrap=bubblewrap)
    if not any(layer.startswith("cgroup") for layer in box.layers):
        box.close()
        pytest.skip("no cgroup per job on this host (not root, or no writable memory and pids controllers)")
    return box


FORK_AND_FILL = '''
import os, time
def f(children, mb):
    held = 0
    pids = []
    for _ in range(children):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            block = bytearray(mb << 20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(3)  # hold it while the others fill theirs
            os.write(write, b"1")  # only a child that held its memory to the end counts
            os._exit(0)
        os.close(write)
        pids.append((pid, read))
    for pid, read in pids:
        held += len(os.read(read, 1))
        os.waitpid(pid, 0)
    return held
'''


@pytest.mark.parametrize("bubblewrap", [True, False], ids=["bwrap", "plain"])
def test_memory_is_bounded_for_the_whole_process_tree(sandbox_config: SandboxConfig, bubblewrap: bool,
                                                      no_leftovers: None) -> None:
    if bubblewrap and not _bwrap_works():
        pytest.skip("bubblewrap unavailable")
    box = _cgroup_box(sandbox_config, bubblewrap)
    with box:
        # Five children of 150 MB each: 750 MB under a 384 MB limit per job. With an rlimit per
        # process all five would fit; with the job's cgroup at most two can hold their memory.
        outcome = attack(box, FORK_AND_FILL, 5, 150, timeout_s=30)
        held = outcome.results[0].value if outcome.ok and outcome.results and outcome.results[0].ok else None
        assert held is None or held <= 2, outcome
        assert "killed at the job's memory limit" in outcome.stderr, outcome  # recorded by the broker
        # The next job is unaffected, and fork bombs stop at the cgroup's pids limit.
        assert value(attack(box, "def f():\n    return 'alive'\n")) == "alive"
        bombed = attack(box, FORK_BOMB)
        assert value(bombed) < 24
        # The cgroup, not the uid's RLIMIT_NPROC (which the kernel checks first), refused them,
        # so the broker can say so (the job's own count includes forks it waited out).
        assert "fork(s) refused at the job's process limit" in bombed.stderr, bombed.stderr


FORK_BOMB = ("import os\ndef f():\n    n = 0\n    try:\n        for _ in range(200):\n"
             "            if os.fork() == 0:\n                import time; time.sleep(2); os._exit(0)\n"
             "            n += 1\n    except OSError:\n        pass\n    return n\n")


def test_a_reused_cgroup_reports_only_its_own_jobs_limit_kills(sandbox_config: SandboxConfig,
                                                              no_leftovers: None) -> None:
    with _cgroup_box(sandbox_config, bubblewrap=False) as box:
        killed = attack(box, FORK_AND_FILL, 5, 150, timeout_s=30)
        assert "killed at the job's memory limit" in killed.stderr, killed
        # The worker's few cgroup folders serve its later jobs again (the one that just ended
        # first); the counters only grow, yet none of these jobs may report those kills.
        for _ in range(3 * (SPARES_AHEAD + 2)):
            later = attack(box, "def f():\n    return 1\n")
            assert value(later) == 1 and "[sandbox]" not in later.stderr, later.stderr


def test_a_job_cgroup_serves_a_few_dozen_jobs_then_is_replaced() -> None:
    host, why = _cgroup.CgroupHost.create()
    if host is None:
        pytest.skip(f"no writable cgroup memory and pids controllers here: {why}")
    try:
        dirs = host.worker_dirs(0)
        jobs = _cgroup.JobCgroups(host.version, dirs, 64 << 20, 8)
        first, procs, baseline = jobs.acquire()
        assert baseline == {} and procs and all(Path(path).exists() for path in procs)
        counts = {"pids_refused": 3}  # as if its jobs had been refused forks
        for _ in range(jobs.REUSES - 1):
            jobs.release(first, counts)
            assert jobs.acquire() == (first, procs, counts)  # the next job counts from there
        jobs.release(first, counts)  # its last job: removed, never handed out again
        assert not any((Path(folder) / f"job-{first}").exists() for folder in dirs.values())
        assert jobs.acquire()[0] != first
    finally:
        host.remove()


def test_cgroups_are_removed_when_the_sandbox_closes(sandbox_config: SandboxConfig) -> None:
    box = _cgroup_box(sandbox_config, bubblewrap=False)
    parents = list(box._cgroups.parents.values()) if box._cgroups is not None else []
    value(attack(box, "def f():\n    return 1\n"))
    assert parents and all(p.is_dir() for p in parents)
    assert all(p.name.startswith(f"selftaught-{os.getpid()}-") for p in parents)
    box.close()
    assert not any(Path(p).exists() for p in parents)


def _bwrap_works() -> bool:
    from selftaught.sandbox import probe

    return probe().bubblewrap


def test_cgroups_can_be_switched_off(sandbox_config: SandboxConfig) -> None:
    with ForkServerSandbox(dataclasses.replace(sandbox_config, workers=1, job_cgroups=False),
                           bubblewrap=False) as box:
        assert not any(layer.startswith("cgroup") for layer in box.layers)
        assert box._cgroups is None
        assert value(attack(box, "def f():\n    return 1\n")) == 1
