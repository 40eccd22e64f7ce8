"""Escape attempts, one test per attack: each asserts the attack was contained, that the run went
on with a recorded reason or result, and that no process was left behind.

Tests that need bubblewrap's filesystem view run on the bwrap sandbox only; the rest also run on
the L0 sandbox (bubblewrap disabled), except where a layer that L0 lacks on this host is needed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from selftaught.records import Job, Outcome
from selftaught.sandbox import ForkServerSandbox

FAKE_KEY = "sk-test-FAKE-broker-key-0123456789"  # what conftest puts in this process's environment


def attack(box: ForkServerSandbox, source: str, *args: Any, timeout_s: float = 3.0) -> Outcome:
    return box.run(Job(source=source, entry="f", calls=(tuple(args),), call_timeout_s=timeout_s))


def still_works(box: ForkServerSandbox) -> None:
    outcome = attack(box, "def f():\n    return 'alive'\n")
    assert outcome.ok and outcome.results[0].value == "alive", outcome


def test_api_key_and_broker_environment(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = (
        "import glob, os\n"
        "def f():\n"
        "    found = [repr(dict(os.environ))]\n"
        "    for path in glob.glob('/proc/*/environ') + ['/proc/1/environ']:\n"
        "        try:\n"
        "            found.append(open(path, 'rb').read().decode(errors='replace'))\n"
        "        except OSError as exc:\n"
        "            found.append(type(exc).__name__)\n"
        "    return found\n"
    )
    outcome = attack(sandbox, source)
    assert outcome.ok
    assert FAKE_KEY not in repr(outcome.results[0].value)
    assert "OPENAI_API_KEY" not in repr(outcome.results[0].value)


def test_network_to_host_listener(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    accepted: list[Any] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(listener.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    source = (
        "import socket, ctypes\n"
        "def f(port):\n"
        "    out = []\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=1)\n"
        "        out.append('connected')\n"
        "    except OSError as exc:\n"
        "        out.append(exc.errno)\n"
        "    out.append(ctypes.CDLL(None).socket(2, 1, 0))  # AF_INET via libc, past any Python guard\n"
        "    return out\n"
    )
    outcome = attack(sandbox, source, port)
    thread.join()
    listener.close()
    assert not accepted
    assert outcome.ok and outcome.results[0].value[0] != "connected"
    assert outcome.results[0].value[1] == -1


@pytest.mark.parametrize("mode", ["bwrap", "plain"])
def test_write_outside_scratch(mode: str, request: pytest.FixtureRequest, tmp_path: Path,
                               no_leftovers: None) -> None:
    box: ForkServerSandbox = request.getfixturevalue(f"{mode}_sandbox")
    store = tmp_path / "runs.sqlite"
    store.write_text("original")
    store.chmod(0o666)
    tmp_path.chmod(0o777)
    package = Path(__file__).resolve().parents[2] / "selftaught"
    targets = [str(store), str(tmp_path / "new-file"), f"/tmp/selftaught-escape-{os.getpid()}",
               "/root/selftaught-escape", str(package / "escape.py"), "/work/selftaught-escape"]
    source = (
        "def f(paths):\n"
        "    done = []\n"
        "    for path in paths:\n"
        "        try:\n"
        "            with open(path, 'w') as handle:\n"
        "                handle.write('pwned')\n"
        "            done.append(path)\n"
        "        except OSError:\n"
        "            pass\n"
        "    open('inside-scratch.txt', 'w').write('fine')\n"
        "    return done\n"
    )
    outcome = attack(box, source, targets)
    assert outcome.ok, outcome.reason
    assert store.read_text() == "original"
    for target in targets[1:]:
        assert not Path(target).exists(), target
    # Paths the job may "write" are its own private copies, never the host's.
    assert set(outcome.results[0].value) <= {targets[2]}


def test_read_run_store_and_hidden_instances(bwrap_sandbox: ForkServerSandbox, tmp_path: Path,
                                             no_leftovers: None) -> None:
    secret = tmp_path / "hidden_test_split.json"
    secret.write_text("HIDDEN-ANSWERS")
    secret.chmod(0o644)
    source = (
        "def f(paths):\n"
        "    got = []\n"
        "    for path in paths:\n"
        "        try:\n"
        "            got.append(open(path).read())\n"
        "        except OSError as exc:\n"
        "            got.append(type(exc).__name__)\n"
        "    return got\n"
    )
    outcome = attack(bwrap_sandbox, source, [str(secret), "/work/shared/DESIGN.md", "/root/.bash_history"])
    assert outcome.ok
    assert outcome.results[0].value == ["FileNotFoundError"] * 3


def test_fork_bomb(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    if "uid" not in sandbox.layers:
        pytest.skip("no per-job uid on this host without bubblewrap, so RLIMIT_NPROC cannot bound a fork bomb")
    source = (
        "import os, time\n"
        "def f():\n"
        "    made = 0\n"
        "    for _ in range(5000):\n"
        "        try:\n"
        "            if os.fork() == 0:\n"
        "                time.sleep(30)\n"
        "                os._exit(0)\n"
        "            made += 1\n"
        "        except OSError:\n"
        "            break\n"
        "    return made\n"
    )
    outcome = attack(sandbox, source, timeout_s=5)
    assert outcome.ok and outcome.results[0].value < 100
    still_works(sandbox)


def test_memory_far_past_the_limit(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = "def f():\n    block = bytearray(8 * 1024 ** 3)\n    return len(block)\n"
    outcome = attack(sandbox, source)
    assert outcome.ok and outcome.results[0].error.startswith("MemoryError")
    still_works(sandbox)


def test_infinite_loop(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    started = time.monotonic()
    outcome = attack(sandbox, "def f():\n    while True:\n        pass\n", timeout_s=0.5)
    assert time.monotonic() - started < 30  # the loop never ends: the timeout ended it
    assert outcome.results[0].timed_out and outcome.results[0].error.startswith("timeout")


def processes_named(tag: str) -> list[int]:
    """Host pids whose command name is ``tag``, in any pid namespace."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == tag:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("mode", ["bwrap", "plain"])
def test_setsid_daemon_outliving_the_timeout(mode: str, request: pytest.FixtureRequest,
                                             no_leftovers: None) -> None:
    box: ForkServerSandbox = request.getfixturevalue(f"{mode}_sandbox")
    tag = f"sbxd{os.getpid() % 100000}{mode[0]}"
    source = (
        "import ctypes, os, time\n"
        "def f(tag):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            try:\n"
        "                ctypes.CDLL(None).prctl(15, tag.encode(), 0, 0, 0)  # PR_SET_NAME: findable by the host\n"
        "                os.closerange(0, 1024)  # let go of every pipe the broker might wait on\n"
        "                while True:\n"
        "                    time.sleep(0.05)\n"
        "            finally:\n"
        "                os._exit(0)\n"
        "        os._exit(0)\n"
        "    time.sleep(0.3)\n"
        "    while True:\n"
        "        pass\n"
    )
    outcome = attack(box, source, tag, timeout_s=0.6)
    assert outcome.results[0].timed_out
    time.sleep(0.2)
    assert processes_named(tag) == []  # the daemon, which would loop forever, is gone


def test_signal_and_ptrace_the_broker(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = (
        "import ctypes, os, signal\n"
        "def f(broker):\n"
        "    out = []\n"
        "    for pid in (os.getppid(), broker, -1):\n"
        "        try:\n"
        "            os.kill(pid, signal.SIGKILL)\n"
        "            out.append('sent')\n"
        "        except OSError as exc:\n"
        "            out.append(exc.errno)\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    out.append(libc.ptrace(16, broker, 0, 0))  # PTRACE_ATTACH\n"
        "    return out\n"
    )
    outcome = attack(sandbox, source, os.getpid())
    # We are still here to check. kill(-1) may only reach the job's own namespace.
    assert outcome.results[0].value[-1] == -1
    still_works(sandbox)


def test_fill_the_disk(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = (
        "def f():\n"
        "    written, errors = 0, []\n"
        "    chunk = b'x' * (1 << 20)\n"
        "    for i in range(200):\n"
        "        try:\n"
        "            with open(f'fill-{i}', 'wb') as handle:\n"
        "                for _ in range(8):\n"
        "                    handle.write(chunk)\n"
        "                    written += len(chunk)\n"
        "        except OSError as exc:\n"
        "            errors.append(exc.errno)\n"
        "            if len(errors) > 3:\n"
        "                break\n"
        "    return written, errors\n"
    )
    outcome = attack(sandbox, source, timeout_s=10)
    assert outcome.ok, outcome.reason
    written, errors = outcome.results[0].value
    assert errors and written <= 40 * (1 << 20)  # capped by RLIMIT_FSIZE and the 32 MB tmpfs
    still_works(sandbox)


def test_spam_stdout(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    finite = attack(sandbox, "def f():\n    print('y' * 5_000_000)\n    return 1\n")
    assert finite.ok and len(finite.stderr) <= 16 * 1024
    endless = attack(sandbox, "import os\ndef f():\n    while True:\n        os.write(1, b'z' * 65536)\n",
                     timeout_s=0.5)
    assert endless.results[0].timed_out and len(endless.stderr) <= 16 * 1024


def test_undo_in_process_guards(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = (
        "import ctypes, importlib, os, sys\n"
        "def f():\n"
        "    importlib.reload(os)\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    return [\n"
        "        libc.unshare(0x10000000 | 0x40000000),  # new user + net namespace\n"
        "        libc.prctl(1, 0, 0, 0, 0),  # clear the parent-death signal\n"
        "        os.system('true') if os.path.exists('/bin/sh') else -1,\n"
        "        libc.mount(b'none', b'/', None, 0, None),\n"
        "    ]\n"
    )
    outcome = attack(sandbox, source)
    assert outcome.ok, outcome.reason
    unshare, pdeathsig, _, mount = outcome.results[0].value
    assert unshare == -1 and pdeathsig == -1 and mount == -1
