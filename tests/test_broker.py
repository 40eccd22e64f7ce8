"""The broker: proxies with the paper's API, budgets it alone counts, trusted scoring, fatal LM errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from selftaught.broker import Broker
from selftaught.config import Budgets, SandboxConfig
from selftaught.errors import LMUnavailable
from selftaught.lm import ScriptedLM
from selftaught.meta_utility import TaskUtility
from selftaught.records import LMRequest
from selftaught.sandbox import ForkServerSandbox
from selftaught.store import RunRecorder, RunStore
from selftaught.tasks import get_task

BUDGETS = Budgets(lm_calls=2, responses_per_call=3, utility_calls=3, improver_timeout_s=20)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ForkServerSandbox]:
    with ForkServerSandbox(SandboxConfig()) as box:
        yield box


def _broker(sandbox: ForkServerSandbox, lm: ScriptedLM, budgets: Budgets = BUDGETS) -> Broker:
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", lm.name, 0, {}, [])
    return Broker(sandbox, lm, RunRecorder(store, run_id), budgets, max_tokens=64)


def _improve(broker: Broker, source: str) -> tuple[str | None, str]:
    task = get_task("lpn")
    run = broker.improve(source, task.initial_solution, TaskUtility(broker, task, "train"), "t")
    return run.solution, run.reason


def test_proxies_expose_the_paper_api(sandbox: ForkServerSandbox) -> None:
    lm = ScriptedLM(lambda request, k: f"{request.user}#{k}")
    source = """
def improve_algorithm(initial_solution, utility, language_model):
    a = language_model.batch_prompt("expert", ["m1", "m1", "m2"], temperature=0.3)
    b = language_model.prompt("expert", "m3", 2, 0.9)
    info = [utility.budget, language_model.budget, language_model.max_responses_per_call, "utility" in utility.str]
    return repr((a, b, info, utility(initial_solution) >= 0))
"""
    solution, reason = _improve(_broker(sandbox, lm), source)
    assert reason == ""
    a, b, info, scored = eval(solution)  # noqa: S307 - our own repr of plain data
    # Identical messages became one request with n=2; answers come back in message order.
    assert a == ["m1#0", "m1#1", "m2#0"]
    assert b == ["m3#0", "m3#1"]
    assert info == [3, 2, 3, True] and scored
    requests = lm.history
    # The two distinct messages of the batch go out together, so they may arrive in either order.
    assert sorted((r.user, r.n, r.system, r.temperature) for r in requests[:2]) == [
        ("m1", 2, "expert", 0.3), ("m2", 1, "expert", 0.3)]
    assert (requests[2].user, requests[2].n, requests[2].system, requests[2].temperature) == ("m3", 2, "expert", 0.9)
    assert len({r.tag for r in requests}) == 3


def test_budgets_are_counted_in_the_broker_not_the_proxy(sandbox: ForkServerSandbox) -> None:
    lm = ScriptedLM(["x"])
    source = """
def improve_algorithm(initial_solution, utility, language_model):
    language_model.budget = 10**6
    utility.budget = 10**6
    language_model.max_responses_per_call = 100
    errors = []
    try:
        language_model.prompt("e", "m", 4, 0.5)
    except BudgetExceeded as exc:
        errors.append(str(exc))
    for _ in range(5):
        try:
            language_model.prompt("e", "m", 1, 0.5)
        except BudgetExceeded as exc:
            errors.append(str(exc))
    for _ in range(5):
        try:
            utility(initial_solution)
        except BudgetExceeded as exc:
            errors.append(str(exc))
    return "\\n".join(errors)
"""
    solution, reason = _improve(_broker(sandbox, lm), source)
    assert reason == "" and solution is not None
    errors = solution.splitlines()
    assert errors[0] == "an LM call may ask for at most 3 responses, not 4"
    assert errors.count("the LM budget of 2 calls is used up") == 3
    assert errors.count("the utility budget of 3 calls is used up") == 2
    assert len(lm.history) == 2


def test_malformed_proxy_calls_raise_inside_the_improver(sandbox: ForkServerSandbox) -> None:
    source = """
def improve_algorithm(initial_solution, utility, language_model):
    out = []
    for call in (lambda: language_model.batch_prompt("e", "not a list", 0.7),
                 lambda: language_model.prompt("e", "m", 0, 0.7),
                 lambda: language_model.prompt("e", "m", 1, 5.0),
                 lambda: language_model.batch_prompt("e", ["m"], 0.7, extra=1)):
        try:
            call()
        except ProxyError as exc:
            out.append(type(exc).__name__)
    return ",".join(out)
"""
    solution, _ = _improve(_broker(sandbox, ScriptedLM(["x"])), source)
    assert solution == "ProxyError,ProxyError,ProxyError,ProxyError"


def test_an_lm_outage_ends_the_run_even_if_the_improver_catches_everything(sandbox: ForkServerSandbox) -> None:
    def broken(request: LMRequest, k: int) -> str:
        raise LMUnavailable("the server is down")

    source = """
def improve_algorithm(initial_solution, utility, language_model):
    try:
        language_model.prompt("e", "m", 1, 0.7)
    except BaseException:
        pass
    return initial_solution
"""
    with pytest.raises(LMUnavailable, match="the server is down"):
        _improve(_broker(sandbox, ScriptedLM(broken)), source)


def test_scores_are_trusted_and_bounded(sandbox: ForkServerSandbox) -> None:
    broker = _broker(sandbox, ScriptedLM(["x"]))
    task = get_task("lpn")
    hack = "import numpy as np\ndef algorithm(a, b, c):\n    return np.ones((len(c), len(c)))\n"
    assert broker.evaluate(hack, task, "val", "hack").score == 0.0
    assert broker.evaluate(42, task, "val", "number").score == 0.0
    parity = (
        "import itertools, numpy as np\n"
        "def algorithm(X, y, T):\n"
        "    masks = [np.array(m) for m in itertools.product([0, 1], repeat=X.shape[1])]\n"
        "    best = max(masks, key=lambda m: int(np.sum((X @ m) % 2 == y)))\n"
        "    return (T @ best) % 2\n"
    )
    good = broker.evaluate(parity, task, "val", "good")
    assert 0.9 < good.score <= 1.0 and good.failed == 0


def test_job_randomness_is_fixed_by_the_run_seed_and_call_site(sandbox: ForkServerSandbox) -> None:
    broker = _broker(sandbox, ScriptedLM(["x"]))
    task = get_task("lpn")
    guesses = task.initial_solution
    first = broker.evaluate(guesses, task, "val", "site-a").score
    assert broker.evaluate(guesses, task, "val", "site-a").score == first
    others = {broker.evaluate(guesses, task, "val", f"site-{i}").score for i in range(4)}
    assert len(others) > 1


def test_meta_utility_of_a_non_string_is_zero(sandbox: ForkServerSandbox) -> None:
    from selftaught.meta_utility import MetaUtility

    broker = _broker(sandbox, ScriptedLM(["x"]))
    meta = MetaUtility(broker, get_task("lpn"), repeats=1, budgets=BUDGETS)
    source = "def improve_algorithm(s, utility, lm):\n    return repr([utility(42), utility(None)])\n"
    run = broker.improve(source, "unused", meta, "meta")
    assert run.solution == "[0.0, 0.0]"


def test_runtime_events_are_recorded_and_linked_to_programs(sandbox: ForkServerSandbox) -> None:
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    broker = Broker(sandbox, ScriptedLM(["x"]), RunRecorder(store, run_id), BUDGETS, max_tokens=64)
    task = get_task("lpn")
    # Every instance runs to its own limit: a task with a short one (0.1 s) keeps this quick.
    hang = broker.evaluate("def algorithm(a):\n    while True:\n        pass\n", get_task("maxcut"), "val", "hang")
    shape = broker.evaluate("def algorithm(a, b, c):\n    return [[0]] * 3\n", task, "val", "shape")
    denied = broker.evaluate(
        "import socket\ndef algorithm(a, b, c):\n    socket.socket(socket.AF_INET).connect(('127.0.0.1', 9))\n",
        task, "val", "net")
    greedy = "def improve_algorithm(s, utility, lm):\n    for _ in range(9):\n        lm.prompt('e', 'm', 1, 0.5)\n"
    broker.improve(greedy, task.initial_solution, TaskUtility(broker, task, "train"), "greedy")
    events = {(kind, program_id) for kind, program_id in store._db.execute(
        "SELECT kind, program_id FROM events WHERE run_id=?", (run_id,))}
    greedy_id = store.add_program(run_id, "improver", greedy)
    assert ("timeout", hang.program_id) in events
    assert ("invalid_output", shape.program_id) in events
    assert ("denied", denied.program_id) in events
    assert ("budget_exceeded", greedy_id) in events and ("improver_failed", greedy_id) in events


def test_a_prompt_the_model_rejects_is_the_improvers_error_not_the_runs(sandbox: ForkServerSandbox) -> None:
    from selftaught.errors import PromptRejected

    def picky(request: LMRequest, k: int) -> str:
        if len(request.user) > 100:
            raise PromptRejected("scripted: the prompt does not fit the context window")
        return "short answer"

    source = """
def improve_algorithm(initial_solution, utility, language_model):
    try:
        language_model.prompt("e", "x" * 1000, 1, 0.7)
    except Exception as exc:
        first = type(exc).__name__
    return first + ":" + language_model.prompt("e", "short", 1, 0.7)[0]
"""
    solution, reason = _improve(_broker(sandbox, ScriptedLM(picky)), source)
    assert (solution, reason) == ("PromptRejected:short answer", "")
