"""The job protocol of ForkServerSandbox, in both isolation modes: calls, results and their JSON
form, remotes and handler errors, timeouts, nesting, threads, and freshness between jobs."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from selftaught.config import SandboxConfig
from selftaught.errors import BudgetExceeded, LMUnavailable, SandboxError
from selftaught.records import Job, RemoteSpec
from selftaught.sandbox import ForkServerSandbox, Sandbox


def job(source: str, *calls: tuple[Any, ...], entry: str = "f", timeout_s: float = 5.0, **kw: Any) -> Job:
    return Job(source=source, entry=entry, calls=tuple(calls), call_timeout_s=timeout_s, **kw)


def test_implements_protocol(sandbox: ForkServerSandbox) -> None:
    box: Sandbox = sandbox
    assert "rlimits" in box.layers and "seccomp" in box.layers


def test_calls_run_in_order_and_failures_are_data(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = "seen = []\ndef f(x):\n    seen.append(x)\n    return 10 // x, list(seen)\n"
    outcome = sandbox.run(job(source, (1,), (0,), (5,)))
    assert outcome.ok, outcome.reason
    assert [r.ok for r in outcome.results] == [True, False, True]
    assert outcome.results[0].value == [10, [1]]
    assert outcome.results[1].error.startswith("ZeroDivisionError: ")
    assert outcome.results[2].value == [2, [1, 0, 5]]


def test_json_conversion(sandbox: ForkServerSandbox) -> None:
    source = (
        "import numpy as np\n"
        "def f(kind):\n"
        "    return {'array': np.arange(4).reshape(2, 2), 'scalar': np.float64(2.5), 'int': np.int32(3),\n"
        "            'tuple': (1, (2, 3)), 'nan': float('nan'), 'inf': -np.inf, 'flag': np.bool_(True),\n"
        "            'none': None}[kind]\n"
        "def g():\n    return {1, 2}\n"
        "def h():\n    return {'k': object()}\n"
    )
    kinds = ["array", "scalar", "int", "tuple", "nan", "inf", "flag", "none"]
    outcome = sandbox.run(job(source, *[(k,) for k in kinds]))
    values = [r.value for r in outcome.results]
    assert values[:4] == [[[0, 1], [2, 3]], 2.5, 3, [1, [2, 3]]]
    assert math.isnan(values[4]) and values[5] == -math.inf and values[6] is True and values[7] is None
    assert type(values[2]) is int and type(values[6]) is bool
    bad = sandbox.run(job(source + "f = g\n", ()))
    assert bad.ok and bad.results[0].error == "unserializable output: set"
    nested = sandbox.run(job(source + "f = h\n", ()))
    assert nested.results[0].error == "unserializable output: object"


def test_array_args(sandbox: ForkServerSandbox) -> None:
    source = "def f(a, b):\n    return type(a).__name__, a.shape, type(b).__name__, (a * 2).sum()\n"
    outcome = sandbox.run(job(source, ([[1, 2], [3, 4]], [1]), array_args=frozenset({0})))
    assert outcome.results[0].value == ["ndarray", [2, 2], "list", 20]


def test_remotes_and_handler_errors(sandbox: ForkServerSandbox) -> None:
    source = (
        "def f(utility, lm):\n"
        "    out = [utility.budget, utility('code'), lm.batch_prompt(['a', 'b'], temperature=0.5)]\n"
        "    for make in ('over', 'down'):\n"
        "        try:\n"
        "            lm.batch_prompt([make])\n"
        "        except Exception as exc:\n"
        "            out.append([type(exc).__name__, str(exc)])\n"
        "    try:\n"
        "        lm.batch_prompt(['over'])\n"
        "    except BudgetExceeded:\n"
        "        out.append('caught by name')\n"
        "    return out\n"
    )
    calls: list[tuple[str, str, list[Any], dict[str, Any]]] = []
    caller = threading.current_thread()

    def handler(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        assert threading.current_thread() is caller
        calls.append((remote, method, args, kwargs))
        if args == [["over"]]:
            raise BudgetExceeded("no LM calls left")
        if args == [["down"]]:
            raise LMUnavailable("server gone")
        return 0.75 if remote == "utility" else [s.upper() for s in args[0]]

    remotes = (RemoteSpec("utility", {"budget": 3}, ("__call__",)), RemoteSpec("lm", {}, ("batch_prompt",)))
    outcome = sandbox.run(job(source, ({"$remote": "utility"}, {"$remote": "lm"}), remotes=remotes), handler)
    assert outcome.ok, outcome.reason
    assert outcome.results[0].value == [
        3, 0.75, ["A", "B"], ["BudgetExceeded", "no LM calls left"], ["LMUnavailable", "server gone"],
        "caught by name",
    ]
    assert calls[0] == ("utility", "__call__", ["code"], {})
    assert calls[1] == ("lm", "batch_prompt", [["a", "b"]], {"temperature": 0.5})


def test_other_handler_errors_abort_the_job(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    def handler(*_: Any) -> Any:
        raise RuntimeError("broker bug")

    remotes = (RemoteSpec("u", {}, ("__call__",)),)
    with pytest.raises(RuntimeError, match="broker bug"):
        sandbox.run(job("def f(u):\n    return u()\n", ({"$remote": "u"},), remotes=remotes), handler)
    assert sandbox.run(job("def f():\n    return 1\n", ())).ok


def test_a_timeout_fails_only_its_call(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = "import time\ndef f(t):\n    time.sleep(t)\n    return t\n"
    started = time.monotonic()
    outcome = sandbox.run(job(source, (0.05,), (30,), (0.05,), timeout_s=0.5, clock="wall"))
    assert time.monotonic() - started < 15  # stopped at the timeout, not after the 30 s sleep
    assert outcome.ok and [r.value for r in outcome.results] == [0.05, None, 0.05]
    assert outcome.results[1].timed_out and "call 2 of 3" in outcome.results[1].error


def test_loading_and_each_call_have_their_own_limits(sandbox: ForkServerSandbox) -> None:
    source = "import time\ntime.sleep(0.4)\ndef f():\n    time.sleep(0.4)\n    return 1\n"
    outcome = sandbox.run(job(source, (), (), (), (), timeout_s=0.7))
    assert outcome.ok, outcome.reason


def test_load_failures(sandbox: ForkServerSandbox) -> None:
    syntax = sandbox.run(job("def f(:\n", ()))
    assert not syntax.ok and syntax.reason.startswith("SyntaxError")
    missing = sandbox.run(job("def g():\n    pass\n", ()))
    assert not missing.ok and "'f' is not defined" in missing.reason
    raising = sandbox.run(job("raise MemoryError\n", ()))
    assert not raising.ok and "MemoryError" in raising.reason
    exiting = sandbox.run(job("import os\ndef f():\n    os._exit(3)\n", (), ()))
    assert [r.error for r in exiting.results] == ["exited with code 3 during call 1 of 2",
                                                  "exited with code 3 during call 2 of 2"]
    slow_load = sandbox.run(job("import time\ntime.sleep(0.1)\ndef f():\n    import os\n    os._exit(4)\n", ()))
    assert slow_load.results[0].error == "exited with code 4 during call 1 of 1"
    crash = sandbox.run(job("import ctypes\ndef f():\n    ctypes.string_at(0)\n", ()))
    assert crash.ok and "SIGSEGV" in crash.results[0].error  # a crash costs its call, not the job
    dying_load = sandbox.run(job("import os\nos._exit(5)\n", ()))
    assert not dying_load.ok and dying_load.reason == "exited with code 5 during start-up"


def test_output_is_captured_and_capped(sandbox: ForkServerSandbox) -> None:
    source = "import sys\ndef f():\n    print('x' * 100_000)\n    print('tail', file=sys.stderr)\n"
    outcome = sandbox.run(job(source, ()))
    assert outcome.ok
    assert len(outcome.stderr) <= 16 * 1024 and outcome.stderr.rstrip().endswith("tail")


def test_no_state_leaks_between_jobs(sandbox: ForkServerSandbox) -> None:
    source = (
        "import builtins, math, os, sys, json\n"
        "def f(poison):\n"
        "    seen = [math.pi, getattr(builtins, 'marker', None), os.environ.get('LEAK'),\n"
        "            os.getcwd(), sorted(os.listdir('.')), sys.modules['json'] is json]\n"
        "    if poison:\n"
        "        math.pi = 3.0\n"
        "        builtins.marker = 1\n"
        "        os.environ['LEAK'] = '1'\n"
        "        open('leftover.txt', 'w').write('x')\n"
        "        sys.modules['json'] = None\n"
        "    return seen\n"
    )
    first = sandbox.run(job(source, (True,)))
    second = sandbox.run(job(source, (False,)))
    assert first.results[0].value[0] == math.pi
    assert second.results[0].value[:3] == [math.pi, None, None]
    assert second.results[0].value[4] == [] and second.results[0].value[5] is True


def test_nested_runs_from_handlers(sandbox: ForkServerSandbox) -> None:
    solution = job("def s(x):\n    return x * 2\n", (1,), (2,), entry="s")
    improver = "def improve(utility, lm):\n    return [utility(i) for i in range(3)] + [lm('p')]\n"
    meta = "def meta(mu):\n    return [mu(k) for k in range(2)]\n"

    def improver_handler(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if remote == "utility":
            return sum(r.value for r in sandbox.run(solution).results)
        return "lm-answer"

    def meta_handler(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        remotes = (RemoteSpec("utility", methods=("__call__",)), RemoteSpec("lm", methods=("__call__",)))
        inner = job(improver, ({"$remote": "utility"}, {"$remote": "lm"}), entry="improve", remotes=remotes)
        return sandbox.run(inner, improver_handler).results[0].value

    results: list[Any] = []

    def one() -> None:
        outer = job(meta, ({"$remote": "mu"},), entry="meta", remotes=(RemoteSpec("mu", methods=("__call__",)),))
        results.append(sandbox.run(outer, meta_handler))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4
    for outcome in results:
        assert outcome.ok, outcome.reason
        assert outcome.results[0].value == [[6, 6, 6, "lm-answer"]] * 2


def test_many_jobs_from_many_threads(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    source = "import numpy as np\ndef f(i):\n    return int(np.arange(i).sum())\n"
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        results[i] = sandbox.run(job(source, (i,)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {i: o.results[0].value for i, o in results.items()} == {i: i * (i - 1) // 2 for i in range(24)}


def test_worker_death_is_survived(sandbox_config: SandboxConfig) -> None:
    with ForkServerSandbox(sandbox_config, bubblewrap=False) as box:
        for worker in box._workers:
            assert worker._process is not None
            worker._process.kill()
            worker._process.wait()
        time.sleep(0.1)
        assert box.run(job("def f():\n    return 7\n", ())).results[0].value == 7


def test_close_leaves_nothing_and_refuses_new_jobs(sandbox_config: SandboxConfig,
                                                   census: Callable[[], set[int]]) -> None:
    before = census()
    box = ForkServerSandbox(sandbox_config, bubblewrap=False)
    try:
        assert box.run(job("def f():\n    return 1\n", ())).ok
        workers = [w._process.pid for w in box._workers if w._process is not None]
        assert workers and all(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        box.close()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert census() <= before
    with pytest.raises(SandboxError):
        box.run(job("def f():\n    pass\n", ()))


def test_fresh_imports_work_under_the_sandbox_uid(sandbox: ForkServerSandbox) -> None:
    source = "def f():\n    import xml.dom.minidom, sqlite3, numpy.linalg\n    return xml.dom.minidom.__name__\n"
    outcome = sandbox.run(job(source, ()))
    assert outcome.ok and outcome.results[0].ok, outcome


def test_malformed_jobs_are_broker_errors(sandbox: ForkServerSandbox) -> None:
    with pytest.raises(SandboxError, match="undeclared remote"):
        sandbox.run(job("def f(u):\n    pass\n", ({"$remote": "nope"},)))
    with pytest.raises(SandboxError, match="not JSON data"):
        sandbox.run(job("def f(u):\n    pass\n", (object(),)))
