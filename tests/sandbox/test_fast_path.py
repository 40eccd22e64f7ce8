"""The per-job fast path: results return before the job has exited, yet the exit is still waited
for (the slot stays held, a lingering job is killed); the in-process CPU timer never lets its
interrupt escape the call; a SIGKILLed job's failure says what killed it."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from selftaught.config import SandboxConfig
from selftaught.records import Job
from selftaught.sandbox import ForkServerSandbox, _exit_report, _jobstart, _launch, _reaper, _runner, _wire
from selftaught.sandbox._job_run import Slots

LINGERS = (
    "import sys\n"
    "def f():\n"
    "    # Rebind the exit the job process ends with: it would now sleep instead of exiting.\n"
    "    start = sys.modules['selftaught.sandbox._jobstart']\n"
    "    import time\n"
    "    start._exit = lambda code: time.sleep(60)\n"
    "    return 'done'\n"
)
TRIVIAL = Job("def f():\n    return 1\n", "f", ((),), call_timeout_s=5)


def test_a_job_alive_after_its_last_result_is_killed_and_holds_its_slot_until_then(
        census: Callable[[], set[int]]) -> None:
    with ForkServerSandbox(SandboxConfig(workers=1)) as box:
        before = census()  # the worker (and bwrap) included
        outcome = box.run(Job(LINGERS, "f", ((),), call_timeout_s=5))
        assert outcome.ok and outcome.results[0].value == "done", outcome
        assert census() - before, "the job should still be alive: it replaced its own exit"
        # The one slot is the lingering job's until it is killed, a second after its result.
        started = time.monotonic()
        assert box.run(TRIVIAL).ok
        assert time.monotonic() - started >= _reaper.LINGER_S / 2
        assert box._reaper.wait_idle(30)
        assert census() <= before, "the lingering job was not killed"


def test_output_written_before_the_last_result_is_all_kept(sandbox: ForkServerSandbox) -> None:
    # More than a pipe holds (64 KiB), so the job blocks on its output while the broker reads it.
    source = "import sys\ndef f():\n    sys.stdout.write('x' * 200_000)\n    print('END')\n    return 1\n"
    outcome = sandbox.run(Job(source, "f", ((),), call_timeout_s=5))
    assert outcome.ok, outcome
    assert outcome.stderr.endswith("xEND\n"), outcome.stderr[-50:]


def test_many_short_jobs_each_get_a_fresh_confined_process(sandbox: ForkServerSandbox) -> None:
    source = ("import os\ndef f():\n    open('mark', 'w').write('x')\n"
              "    return [os.getpid(), os.getuid(), sorted(os.listdir('.'))]\n")
    seen = [sandbox.run(Job(source, "f", ((),), call_timeout_s=5)) for _ in range(6)]
    assert all(outcome.ok for outcome in seen), seen
    pids, uids, listings = zip(*(outcome.results[0].value for outcome in seen), strict=True)
    assert set(pids) == {1}  # pid 1 of its own namespace, every time
    assert all(listing == ["mark"] for listing in listings)  # a fresh scratch dir each time
    if 0 not in uids:
        assert len(set(uids)) == len(uids)  # a uid of its own per job


def test_jobs_run_at_normal_priority(sandbox: ForkServerSandbox) -> None:
    # Spares are forked and prepared in the background (nice 10 where the worker may raise
    # priorities again) and warm up at nice 19 while they wait; a job must not inherit either,
    # or its wall time would depend on load. Jobs come back to back (cold spares), a moment
    # apart (spares in the middle of their warm-up) and after a pause (warmed spares).
    source = "import os\ndef f():\n    return os.getpriority(os.PRIO_PROCESS, 0)\n"
    seen = []
    for pause in (0, 0, 0, 0.003, 0.003, 0.003, 0.05, 0.05, 0.05):
        time.sleep(pause)
        seen.append(sandbox.run(Job(source, "f", ((),), call_timeout_s=5)).results[0].value)
    assert seen == [0] * len(seen)


RANDOMNESS = (
    "import os, random\nimport numpy as np\ndef f():\n"
    "    return [random.random(), float(np.random.rand()), os.urandom(8).hex(),\n"
    "            float(np.random.default_rng().random())]\n"
)


def test_a_jobs_randomness_is_its_seeds_on_a_warmed_spare_and_on_a_cold_one() -> None:
    # Spares are forked without CPython's at-fork hooks (no reseeding), and only a spare that
    # waits for its job warms up (running a job of its own first): every job must still draw
    # exactly what its own seed gives, and fresh entropy where it asks for it.
    import numpy as np

    expected = {}
    for seed in (3, 2**40 + 7):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        expected[seed] = [random.random(), float(np.random.rand())]
    with ForkServerSandbox(SandboxConfig(workers=1)) as box:
        def run(seed: int) -> list[Any]:
            outcome = box.run(Job(RANDOMNESS, "f", ((),), call_timeout_s=5, seed=seed))
            assert outcome.ok, outcome
            return list(outcome.results[0].value)

        drawn = []
        for seed in (3, 3, 2**40 + 7):  # spares that waited, so warmed up
            time.sleep(20 * _jobstart.WARM_UP_AFTER_S)
            drawn.append(run(seed))
        with ThreadPoolExecutor(4) as pool:  # jobs waiting for spares: cold ones
            drawn += list(pool.map(run, [3] * 8))
    seeds = [3, 3, 2**40 + 7] + [3] * 8
    assert [values[:2] for values in drawn] == [expected[seed] for seed in seeds]
    assert len({values[2] for values in drawn}) == len(drawn)
    assert len({values[3] for values in drawn}) == len(drawn)


def test_spares_warm_or_cold_leave_sigprof_alone_for_a_job_without_a_cpu_limit(sandbox: ForkServerSandbox) -> None:
    # The fork server rehearses the job path before forking any spare, and a waiting spare
    # warms up: both set up the CPU timer's handler and then restore the default, so only a
    # job with a CPU-time limit (clock "cpu") gets the handler.
    source = "import signal\ndef f():\n    return signal.getsignal(signal.SIGPROF) == signal.SIG_DFL\n"
    for clock, expected in (("wall", True), ("cpu", False)):
        time.sleep(20 * _jobstart.WARM_UP_AFTER_S)  # its spare has warmed up
        outcome = sandbox.run(Job(source, "f", ((),), call_timeout_s=5, clock=clock))
        assert outcome.ok and outcome.results[0].value is expected, (clock, outcome)
    with ThreadPoolExecutor(4) as pool:  # jobs waiting for spares: cold ones
        outcomes = list(pool.map(sandbox.run, [Job(source, "f", ((),), call_timeout_s=5, clock="wall")] * 8))
    assert [outcome.results[0].value for outcome in outcomes] == [True] * 8, outcomes


OWN_WARM_UP_DELAY = (
    "import sys\n"
    "def f():\n"
    "    # The spare this job runs in, as the fork server made it (spare_main is still running).\n"
    "    frame = sys._getframe()\n"
    "    while frame.f_code.co_name != 'spare_main':\n"
    "        frame = frame.f_back\n"
    "    return frame.f_locals['spare'].warm_up_after_s\n"
)


def test_slots_are_full_while_each_is_held_or_waited_for() -> None:
    slots = Slots(2)
    assert not slots.full
    slots.acquire()
    assert not slots.full
    slots.acquire()
    assert slots.full
    waiter = threading.Thread(target=slots.acquire)
    waiter.start()
    slots.release()
    waiter.join(5)
    assert slots.full  # the waiter holds the slot now
    slots.release()
    slots.release()
    assert not slots.full
    with pytest.raises(ValueError):
        slots.release()  # more releases than acquisitions is a bug, as with a bounded semaphore
    assert not slots.full


def test_spares_warm_up_at_once_unless_every_slot_was_in_demand() -> None:
    # A spare forked after a job that found a slot free (a caller's loop) warms up at once, to be
    # warm for a job that comes a millisecond later; one forked while jobs queued for the slots
    # waits first, as it gets its job at once and warming would take CPU from running jobs.
    # Lone jobs come first: a spare keeps the setting it was forked with, and one forked while
    # jobs queued may wait unused behind the other worker's spares for a long time.
    job = Job(OWN_WARM_UP_DELAY, "f", ((),), call_timeout_s=5)
    with ForkServerSandbox(SandboxConfig(workers=2)) as box:
        def delay(_: object = None) -> float:
            outcome = box.run(job)
            assert outcome.ok, outcome
            return float(outcome.results[0].value)

        one_by_one = []
        for _ in range(8):  # each after the last one's exit (which holds its slot until then)
            assert box._reaper.wait_idle(5)
            one_by_one.append(delay())
        with ThreadPoolExecutor(6) as pool:
            queued = list(pool.map(delay, range(24)))
    assert one_by_one == [0.0] * 8, one_by_one  # spares forked before any job, or after lone jobs
    assert _jobstart.WARM_UP_AFTER_S in queued[4:], queued  # spares forked while jobs queued


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="CPython 3.11 quickens a function after 8 calls")
def test_every_job_finds_the_job_path_already_specialized(sandbox: ForkServerSandbox) -> None:
    # The fork server runs the job path on a job of its own before it forks spares, so no job
    # process pays for CPython rewriting that code on its first calls. ``_load`` runs once per
    # job process (twice on a spare that warmed up): only the server's rehearsal quickens it.
    source = ("import sys\ndef f():\n    code = sys.modules['selftaught.sandbox._runner']._load.__code__\n"
              "    return code._co_code_adaptive != code.co_code\n")
    with ThreadPoolExecutor(4) as pool:  # cold spares among them
        outcomes = list(pool.map(sandbox.run, [Job(source, "f", ((),), call_timeout_s=5)] * 8))
    assert [outcome.results[0].value for outcome in outcomes] == [True] * 8, outcomes


def _server_pid(root: int) -> int:
    """The fork server below ``root``: the oldest process named ``sandbox-worker`` (a fresh
    spare carries that name until it renames itself)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
            except OSError:
                continue
            if name == "sandbox-worker" and root in _ancestors(int(entry.name)):
                found.append((int(rest.split()[19]), int(entry.name)))  # start time, pid
    assert found, "no fork server found"
    return min(found)[1]


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1:
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
        seen.add(pid)
    return seen


def test_a_jobs_slot_is_freed_when_its_tree_is_gone_even_while_its_worker_is_stopped() -> None:
    # The broker holds each spare's pidfd: the CPU slot of a job whose results are in is free
    # the moment its process has exited, without waiting for the fork server's report.
    with ForkServerSandbox(SandboxConfig(workers=1)) as box:  # one CPU slot
        assert box.run(TRIVIAL).ok
        worker = box._workers[0]
        deadline = time.monotonic() + 30
        while len(worker._spares) < 2 and time.monotonic() < deadline:  # both spares offered
            time.sleep(0.01)
        server = _server_pid(os.getpid())
        os.kill(server, signal.SIGSTOP)
        try:
            started = time.monotonic()
            first, second = box.run(TRIVIAL), box.run(TRIVIAL)  # the second needs the first's slot
            took = time.monotonic() - started
        finally:
            os.kill(server, signal.SIGCONT)
        assert first.ok and second.ok, (first, second)
        # Waiting for the stopped server's report instead would take LINGER_S plus the kill grace.
        assert took < _reaper.LINGER_S, took
        assert box._reaper.wait_idle(30)


def _grab_frame(store: list[Any]) -> None:
    store.append(sys._getframe(1))


def test_the_cpu_timer_interrupts_job_code_but_never_the_runner_itself() -> None:
    frames: list[Any] = []
    _runner._one_call(_grab_frame, [frames], None)
    runner_frame = frames[0]
    assert runner_frame.f_code is _runner._one_call.__code__
    timer = _runner._CpuTimer()
    timer.trusted = frozenset({_runner._one_call.__code__})
    timer.active = True
    timer._on_signal(signal.SIGPROF, runner_frame)  # e.g. in ``except _TimeUp`` before ``stop``
    assert timer.fired
    with pytest.raises(_runner._TimeUp):
        timer._on_signal(signal.SIGPROF, sys._getframe())  # job code: interrupted
    timer.active = False
    timer._on_signal(signal.SIGPROF, sys._getframe())  # stopped: nothing happens


def _spin() -> None:
    while True:
        pass


def _many_timeouts(rounds: int, results: Any) -> None:
    _runner._TIMER.install()
    count = 0
    for _ in range(rounds):
        result = _wire.decode(_runner._one_call(_spin, [], 0.002)[4:])
        count += result["timed_out"] is True and result["ok"] is False
    results.put(count)


def test_the_cpu_timer_stops_every_call_and_nothing_escapes() -> None:
    # In a child process: the timer takes over SIGPROF. Each call is stopped after 2 ms of CPU,
    # and the timer goes on firing every 5 ms until stopped; no _TimeUp may leave ``_one_call``.
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_many_timeouts, args=(150, results))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert results.get(timeout=5) == 150


def _status(report: dict[str, Any]) -> _exit_report.ExitStatus:
    status = _exit_report.ExitStatus(-1)
    status.take(report)
    return status


@pytest.mark.parametrize(("report", "expected"), [
    ({"status": -9, "oom_kills": 1, "cpu_s": 0.2}, "killed at the job's memory limit during call 1 of 1"),
    ({"status": -9, "cpu_s": 5.1}, "killed at its 5 s CPU-time rlimit during call 1 of 1"),
    ({"status": -9, "killed": True, "cpu_s": 0.5}, "killed by SIGKILL on the broker's request during call 1 of 1"),
    ({"status": -9, "cpu_s": 0.53}, "killed by SIGKILL during call 1 of 1 (0.53 s of CPU used; no memory-limit"),
    ({"status": 3}, "exited with code 3 during call 1 of 1"),
    ({"status": -11}, "killed by SIGSEGV (crash) during call 1 of 1"),
])
def test_a_killed_job_says_what_killed_it(report: dict[str, Any], expected: str) -> None:
    assert _exit_report.describe_end(_status(report), 4, "call 1 of 1").startswith(expected)


def test_a_worker_whose_numpy_started_threads_forks_with_os_fork_and_runs_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare fork is only safe in a single-threaded server. With ``OPENBLAS_NUM_THREADS=2``
    importing numpy leaves a BLAS thread running in the worker, as some libraries' imports do:
    the server then forks its spares with ``os.fork`` (said in the worker's log), and jobs still
    run, each in a fresh process that is pid 1 of its own pid namespace."""
    source = ("import os\nimport numpy as np\n"
              "def f():\n    return [os.getpid(), float(np.ones((64, 64)).dot(np.ones(64)).sum())]\n")
    job = Job(source, "f", ((),), call_timeout_s=5)
    for blas_threads, careful in (("1", False), ("2", True)):
        monkeypatch.setitem(_launch.SANDBOX_ENV, "OPENBLAS_NUM_THREADS", blas_threads)
        with ForkServerSandbox(SandboxConfig(workers=1)) as box:
            outcomes = [box.run(job) for _ in range(6)]
            log = box._workers[0]._log_path.read_text()
        assert [o.results[0].value for o in outcomes if o.ok] == [[1, 4096.0]] * 6, [o.reason for o in outcomes]
        assert ("threads, so spares are forked with os.fork" in log) is careful, log
