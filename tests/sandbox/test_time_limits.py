"""Time limits that charge only what ran late: per-call limits, start-up, and absolute deadlines.

A slow call scores 0 alone and the calls after it still run; decoding a large job is start-up,
never a call's time; a job's deadline holds whatever the job sends, and frees its slot for the
next job; an improver run ends at its time limit however it loops on proxy calls.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selftaught.broker import Broker
from selftaught.cli import main
from selftaught.config import Budgets, SandboxConfig
from selftaught.errors import ProxyError
from selftaught.lm import ScriptedLM
from selftaught.meta_utility import TaskUtility
from selftaught.records import Job, RemoteSpec
from selftaught.sandbox import ForkServerSandbox, time_left
from selftaught.store import RunRecorder, RunStore
from selftaught.tasks import get_task
from tests.conftest import ScriptedServer

GRACE_S = 5.0
"""How far past a deadline a job may end: the kill, the tree's exit report and the output drain, on
a loaded machine. Every job these bounds check would otherwise run for 60 s or forever, so a
generous grace still tells a limit that holds from one that does not."""

SLOW_THIRD = """
import time

def f(i):
    if i == 2:
        time.sleep(60)  # waits: only the wall-clock limit can stop it
    return i * i
"""

BUSY_THIRD = """
def f(i):
    if i == 2:
        while True:  # computes: stopped by its CPU-time limit, in the same process
            pass
    return i * i
"""


def _squares_but_third(outcome: Any) -> None:
    assert outcome.ok, outcome.reason
    assert len(outcome.results) == 10
    third = outcome.results[2]
    assert not third.ok and third.timed_out and third.error.startswith("timeout: call 3 of 10")
    assert [r.value for i, r in enumerate(outcome.results) if i != 2] == [i * i for i in range(10) if i != 2]
    assert all(r.ok and not r.timed_out for i, r in enumerate(outcome.results) if i != 2)


def test_a_call_that_waits_past_its_limit_costs_only_itself(sandbox: ForkServerSandbox, no_leftovers: None) -> None:
    job = Job(SLOW_THIRD, "f", tuple((i,) for i in range(10)), call_timeout_s=0.1)
    outcome = sandbox.run(job)
    _squares_but_third(outcome)
    assert "wall-clock limit" in outcome.results[2].error
    assert outcome.restarts == 1  # the sleeping process was killed; calls 4-10 ran in a fresh one
    assert job.call_wall_s() <= outcome.results[2].elapsed_s < job.call_wall_s() + GRACE_S


def test_a_call_that_computes_past_its_limit_costs_only_itself(sandbox: ForkServerSandbox) -> None:
    outcome = sandbox.run(Job(BUSY_THIRD, "f", tuple((i,) for i in range(10)), call_timeout_s=0.1))
    _squares_but_third(outcome)
    assert "CPU-time limit" in outcome.results[2].error
    assert outcome.restarts == 0  # interrupted in place, no new process needed


def test_a_call_that_swallows_the_interruption_is_still_stopped(sandbox: ForkServerSandbox) -> None:
    source = (
        "def f(i):\n"
        "    if i == 1:\n"
        "        while True:\n"
        "            try:\n"
        "                while True:\n"
        "                    pass\n"
        "            except BaseException:\n"
        "                pass\n"
        "    return i\n"
    )
    outcome = sandbox.run(Job(source, "f", ((0,), (1,), (2,)), call_timeout_s=0.1))
    assert [r.ok for r in outcome.results] == [True, False, True]
    assert outcome.results[1].timed_out and outcome.results[2].value == 2


def test_a_call_that_kills_its_process_costs_only_itself(sandbox: ForkServerSandbox) -> None:
    source = "import os\ndef f(i):\n    if i == 1:\n        os._exit(3)\n    return i\n"
    outcome = sandbox.run(Job(source, "f", ((0,), (1,), (2,)), call_timeout_s=1.0))
    assert outcome.ok and [r.ok for r in outcome.results] == [True, False, True]
    assert outcome.results[1].error == "exited with code 3 during call 2 of 3" and outcome.restarts == 1


def test_start_up_has_its_own_limit(sandbox: ForkServerSandbox) -> None:
    slow_load = "import time\ntime.sleep(0.5)\ndef f():\n    return 1\n"
    assert sandbox.run(Job(slow_load, "f", ((),), call_timeout_s=0.05)).ok  # loading is never a call's time
    stuck = sandbox.run(Job("import time\ntime.sleep(60)\ndef f():\n    return 1\n", "f", ((),),
                            call_timeout_s=0.05, startup_timeout_s=0.5))
    assert not stuck.ok and stuck.reason.startswith("timeout: start-up") and stuck.results == ()


# --- large payloads under load ---------------------------------------------------------------------

ALTERNATE = "def algorithm(adjacency):\n    return [i % 2 for i in range(len(adjacency))]\n"


@contextlib.contextmanager
def cpu_hogs() -> Iterator[None]:
    """Two busy processes beside the block (this machine has two cores)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(2)]
    try:
        time.sleep(0.2)
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _maxcut_test_split(sandbox: ForkServerSandbox) -> tuple[float, int]:
    store = RunStore(":memory:")
    run_id = store.create_run("maxcut", "scripted", 0, {}, [])
    broker = Broker(sandbox, ScriptedLM(["x"]), RunRecorder(store, run_id), Budgets())
    evaluation = broker.evaluate(ALTERNATE, get_task("maxcut"), "test", "payload")
    return evaluation.score, evaluation.failed


def test_a_large_split_scores_the_same_beside_two_cpu_hogs(plain_sandbox: ForkServerSandbox) -> None:
    idle = _maxcut_test_split(plain_sandbox)
    with cpu_hogs():
        loaded = _maxcut_test_split(plain_sandbox)
    assert loaded == idle
    assert idle[1] == 0 and 0.45 < idle[0] < 0.55  # 50 graphs (1.8 MB of JSON), none lost


# --- deadlines ---------------------------------------------------------------------------------------

PINGS_READY = """
import json, socket, struct

def f():
    channel = socket.socket(fileno=3)
    frame = json.dumps({"t": "ready"}).encode()
    while True:
        channel.sendall(struct.pack(">I", len(frame)) + frame)
"""

REFUSED_CALLS = """
def f(oracle):
    while True:
        try:
            oracle.ask()
        except Exception:
            pass
"""


@pytest.fixture(scope="module")
def one_slot() -> Iterator[ForkServerSandbox]:
    with ForkServerSandbox(SandboxConfig(workers=1)) as box:
        yield box


def test_pinging_ready_buys_no_time(one_slot: ForkServerSandbox) -> None:
    started = time.monotonic()
    outcome = one_slot.run(Job(PINGS_READY, "f", ((),), call_timeout_s=60, clock="wall", deadline_s=2))
    assert time.monotonic() - started < 2 + GRACE_S
    assert not outcome.ok and "protocol violation" in outcome.reason


def test_refused_calls_buy_no_time_and_a_queued_job_is_not_starved(one_slot: ForkServerSandbox) -> None:
    hostile = Job(REFUSED_CALLS, "f", (({"$remote": "oracle"},),), call_timeout_s=60, clock="wall",
                  deadline_s=2, remotes=(RemoteSpec("oracle", {}, ("ask",)),))
    honest = Job("def f(x):\n    return x + 1\n", "f", ((41,),), call_timeout_s=1)
    ended: dict[str, float] = {}
    outcomes: dict[str, Any] = {}

    def run(name: str, job: Job) -> None:
        outcomes[name] = one_slot.run(job)  # no handler: every proxy call is refused at once
        ended[name] = time.monotonic()

    started = time.monotonic()
    first = threading.Thread(target=run, args=("hostile", hostile))
    first.start()
    time.sleep(0.3)  # the hostile job holds the only slot; the honest one queues for it
    second = threading.Thread(target=run, args=("honest", honest))
    second.start()
    first.join(30)
    second.join(30)
    assert 2 <= ended["hostile"] - started < 2 + GRACE_S
    result = outcomes["hostile"].results[0]
    assert result.timed_out and "deadline" in result.error
    assert outcomes["honest"].ok and outcomes["honest"].results[0].value == 42
    assert ended["honest"] - ended["hostile"] < 5


def test_a_handler_cannot_outlive_the_deadline_of_the_job_it_serves(one_slot: ForkServerSandbox) -> None:
    """A proxy call that starts a job (a solution scored for an improver) ends with its caller."""
    def handler(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        left = time_left()
        if left is None or not 0 < left <= 2:
            raise ProxyError(f"the handler should see the caller's time left, not {left}")
        inner = one_slot.run(Job("import time\ndef f():\n    time.sleep(60)\n", "f", ((),) * 5, call_timeout_s=5))
        if inner.ok:
            raise ProxyError("the inner job should have been cut short")
        return inner.reason

    source = "def f(oracle):\n    while True:\n        oracle.ask()\n"
    started = time.monotonic()
    outcome = one_slot.run(Job(source, "f", (({"$remote": "oracle"},),), call_timeout_s=60, clock="wall",
                               deadline_s=2, remotes=(RemoteSpec("oracle", {}, ("ask",)),)), handler)
    assert time.monotonic() - started < 2 + 2 * GRACE_S
    assert outcome.results[0].timed_out
    assert time_left() is None  # outside any proxy call


# --- improver runs ---------------------------------------------------------------------------------

HOSTILE_IMPROVER = """
QUICK = "def algorithm(*args):\\n    return None\\n"

def improve_algorithm(initial_solution, utility, language_model):
    while True:
        for call in (lambda: utility(QUICK), lambda: language_model.prompt("e", "m", 1, 0.5)):
            try:
                call()
            except Exception:
                pass
"""

STALLING_SOLUTION = "import time\ndef algorithm(adjacency):\n    time.sleep(60)\n"

SCORES_STALLING = """
def improve_algorithm(initial_solution, utility, language_model):
    while True:
        utility(STALLING)
""".replace("STALLING", repr(STALLING_SOLUTION))


@pytest.mark.parametrize("source", [HOSTILE_IMPROVER, SCORES_STALLING], ids=["loops-on-proxy-calls",
                                                                            "scores-a-stalling-solution"])
def test_an_improver_run_ends_at_its_time_limit(plain_sandbox: ForkServerSandbox, source: str) -> None:
    store = RunStore(":memory:")
    run_id = store.create_run("maxcut", "scripted", 0, {}, [])
    budgets = Budgets(lm_calls=2, utility_calls=3, improver_timeout_s=3)
    broker = Broker(plain_sandbox, ScriptedLM(["an answer"]), RunRecorder(store, run_id), budgets)
    task = get_task("maxcut")
    started = time.monotonic()
    run = broker.improve(source, task.initial_solution, TaskUtility(broker, task, "train"), "hostile")
    assert time.monotonic() - started < 3 + GRACE_S
    assert run.solution is None and run.reason.startswith("timeout") and "deadline" in run.reason
    kinds = [kind for (kind,) in store._db.execute("SELECT kind FROM events WHERE run_id=?", (run_id,))]
    assert "timeout" in kinds and "improver_failed" in kinds


def test_a_hostile_improver_is_ended_at_improver_timeout_inside_a_run(
        scripted_server: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``selftaught improve`` with an improver that loops on proxy calls: the run goes on without it."""
    improver = tmp_path / "hostile.py"
    improver.write_text(HOSTILE_IMPROVER)
    started = time.monotonic()
    code = main(["improve", "--task", "three_sat", "--improver", str(improver), "--improver-timeout", "3",
                 "--lm", "openai:fake-model", "--lm-calls", "1", "--utility-calls", "2", "--json",
                 "--runs-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["solution"] is None and doc["reason"].startswith("timeout") and "3 s deadline" in doc["reason"]
    assert doc["lm_calls"] == 1 and doc["utility_calls"] == 2  # then refused, again and again, until the deadline
    store = RunStore.in_dir(tmp_path)
    try:
        kinds = {kind for (kind,) in store._db.execute("SELECT kind FROM events WHERE run_id=?", (doc["run_id"],))}
    finally:
        store.close()
    assert {"timeout", "budget_exceeded", "improver_failed"} <= kinds
    assert time.monotonic() - started < 60  # the initial solution is also scored on val and test


@pytest.mark.parametrize("name", ["lpn", "parity", "string_grid", "qap", "three_sat", "maxcut"])
def test_task_descriptions_say_what_a_timeout_costs(name: str) -> None:
    task = get_task(name)
    assert "<time limit" not in task.description
    stated = [line for line in task.description.splitlines() if f"{task.call_timeout_s:g} s of CPU time per" in line]
    assert len(stated) == 1 and "still run" in stated[0]
    wall = Job("", "f", (), task.call_timeout_s).call_wall_s()
    assert f"({wall:g} s of wall time)" in stated[0]


def test_patching_the_clocks_in_the_candidate_does_not_lift_the_cpu_limit(sandbox: ForkServerSandbox) -> None:
    source = (
        "import resource, signal, time\n"
        "signal.setitimer = lambda *args: (0.0, 0.0)\n"
        "time.process_time = lambda: 0.0\n"
        "signal.signal = lambda *args: None\n"
        "resource.getrusage = lambda who: resource.struct_rusage((0.0,) * 16)\n"
        "def f():\n"
        "    while True:\n"
        "        pass\n"
    )
    outcome = sandbox.run(Job(source, "f", ((),), call_timeout_s=0.1))
    assert outcome.results[0].timed_out and "CPU-time limit" in outcome.results[0].error
