"""Improvers and solutions that attack the trusted side through the broker: invalid text, absurd
arguments, oversized inputs and results. Each test asserts the attack was contained, that the
improver got an error or the solution a 0 with a recorded reason, and that the broker went on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from selftaught.broker import Broker
from selftaught.broker.boundary import SizeLimits
from selftaught.config import Budgets, SandboxConfig
from selftaught.lm import CachingLM, ScriptedLM
from selftaught.meta_utility import TaskUtility
from selftaught.sandbox import ForkServerSandbox
from selftaught.store import RunCache, RunRecorder, RunStore
from selftaught.tasks import get_task

BUDGETS = Budgets(lm_calls=3, responses_per_call=3, utility_calls=4, improver_timeout_s=30)


def make_broker(sandbox: ForkServerSandbox, store: RunStore, lm: ScriptedLM | None = None,
                sizes: SizeLimits | None = None) -> tuple[Broker, str]:
    lm = lm or ScriptedLM(lambda request, k: f"answer to {request.user[:20]}")
    run_id = store.create_run("lpn", lm.name, 0, {}, [])
    return Broker(sandbox, lm, RunRecorder(store, run_id), BUDGETS, max_tokens=64, sizes=sizes), run_id


def improve(broker: Broker, source: str) -> tuple[str | None, str]:
    task = get_task("lpn")
    run = broker.improve(source, task.initial_solution, TaskUtility(broker, task, "train"), "t1/r0")
    return run.solution, run.reason


def events(store: RunStore, run_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind, detail in store._db.execute("SELECT kind, detail FROM events WHERE run_id=?", (run_id,)):
        found.setdefault(kind, []).append(detail)
    return found


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore.in_dir(tmp_path)


def test_invalid_text_everywhere_is_repaired_recorded_and_the_run_resumes(
        sandbox: ForkServerSandbox, store: RunStore, tmp_path: Path) -> None:
    lm = ScriptedLM(lambda request, k: "reply \udfff")  # the model itself answers with a lone surrogate
    run_id = store.create_run("lpn", lm.name, 0, {}, [])
    cached = CachingLM(lm, RunCache(store, run_id))
    broker = Broker(sandbox, cached, RunRecorder(store, run_id), BUDGETS, max_tokens=64)
    source = '''
def improve_algorithm(initial_solution, utility, language_model):
    bad = "\\ud800"
    answer = language_model.prompt("expert" + bad, "please" + bad, 1, 0.5)[0]
    assert answer == "reply \\ufffd" or answer == "reply \\udfff", answer
    utility(initial_solution + "\\n# " + bad + "\\n")
    utility("def algorithm(a, b, c):\\n    raise ValueError('\\udfff')\\n")
    return initial_solution + "# done " + bad + "\\n"
'''
    solution, reason = improve(broker, source)
    assert reason == "" and solution is not None and "\ud800" not in solution and "\ufffd" in solution
    assert "\ufffd" in lm.history[0].user and "\ufffd" in lm.history[0].system
    found = events(store, run_id)
    assert found["invalid_text"], found
    # What was stored reads back, and a new store on the same file (a resume) opens it.
    errors = [r for (r,) in store._db.execute("SELECT reason FROM evaluations WHERE run_id=?", (run_id,))]
    assert any("\ufffd" in r for r in errors)
    store.close()
    again = RunStore.in_dir(tmp_path)
    assert again.get_run(run_id).status == "running"
    assert again.count("lm_calls", run_id) == 1
    # The cached answer is served again on resume, instead of ending it.
    replayed = CachingLM(ScriptedLM(["unused"]), RunCache(again, run_id)).complete(lm.history[0])
    assert replayed.cached and replayed.texts == ("reply \ufffd",)


def test_absurd_prompt_arguments_fail_in_the_improver_before_any_allocation(
        sandbox: ForkServerSandbox, store: RunStore) -> None:
    broker, run_id = make_broker(sandbox, store)
    source = '''
def improve_algorithm(initial_solution, utility, language_model):
    seen = []
    for n in (10**30, 2**40, 10**9, -1, 1.5, True):
        try:
            language_model.prompt("e", "m", n, 0.5)
            seen.append("ok")
        except (BudgetExceeded, ProxyError) as exc:
            seen.append(type(exc).__name__)
    for t in (float("nan"), float("inf"), -1e308, "hot"):
        try:
            language_model.prompt("e", "m", 1, t)
            seen.append("ok")
        except ProxyError as exc:
            seen.append("ProxyError")
    return repr(seen)
'''
    solution, reason = improve(broker, source)
    assert reason == ""
    assert solution == repr(["BudgetExceeded"] * 3 + ["ProxyError"] * 3 + ["ProxyError"] * 4)
    found = events(store, run_id)
    assert found["budget_exceeded"] and found["proxy_error"]
    assert store.count("lm_calls", run_id) == 0


def test_oversized_sources_and_store_growth_are_refused(sandbox: ForkServerSandbox, store: RunStore) -> None:
    sizes = SizeLimits(source_bytes=20_000, store_growth_bytes=50_000)
    broker, run_id = make_broker(sandbox, store, sizes=sizes)
    source = '''
def improve_algorithm(initial_solution, utility, language_model):
    seen = []
    try:
        utility("#" * 30_000 + "\\n" + initial_solution)
    except ProxyError as exc:
        seen.append(str(exc))
    for _ in range(3):
        try:
            language_model.prompt("e", "x" * 20_000, 1, 0.5)
            seen.append("ok")
        except ProxyError as exc:
            seen.append(str(exc))
    return "#" * 30_000 + "\\n" + repr(seen)
'''
    solution, reason = improve(broker, source)
    assert reason == "" and solution is not None
    assert "max_source_kb" in solution and "ok" in solution and "max_store_growth_mb" in solution
    # The oversized solution the improver returned scores 0 with a reason; it is not stored.
    task = get_task("lpn")
    evaluation = broker.evaluate(solution, task, "val", "t1/r0/val")
    assert evaluation.score == 0.0 and "max_source_kb" in evaluation.reason
    assert max(len(src) for (src,) in store._db.execute("SELECT source FROM programs")) < 20_000
    assert events(store, run_id)["size_limit"]
    # An improver over the limit is not run at all.
    run = broker.improve("#" * 30_000, task.initial_solution, TaskUtility(broker, task, "train"), "t2")
    assert run.solution is None and "max_source_kb" in run.reason


def test_results_cannot_amplify_in_the_broker(sandbox_config: SandboxConfig, store: RunStore) -> None:
    config = dataclasses.replace(sandbox_config, workers=1, max_result_kb=256, max_job_values=200_000)
    with ForkServerSandbox(config, bubblewrap=False) as box:
        broker, run_id = make_broker(box, store)
        source = '''
def improve_algorithm(initial_solution, utility, language_model):
    seen = []
    try:
        utility([[]] * 200_000)          # a 600 kB message of empty lists
    except ProxyError as exc:
        seen.append("refused")
    seen.append(utility(initial_solution) >= 0)   # the job goes on
    return repr(seen) + "\\n" + initial_solution
'''
        solution, reason = improve(broker, source)
        assert reason == "" and solution is not None and solution.startswith("['refused', True]")
        flood = "def algorithm(a, b, c):\n    return [[]] * 100_000\n"
        task = get_task("lpn")
        evaluation = broker.evaluate(flood, task, "val", "t1/flood")
        assert evaluation.score == 0.0 and "size limit" in evaluation.reason
        assert events(store, run_id)["size_limit"]
