"""The proxy contract (``selftaught.proxy``): one set of error classes on both sides of the sandbox,
run-level caps an improver can tell from its own budget, and one parser of fenced code."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selftaught import errors
from selftaught.broker import Broker
from selftaught.config import Budgets, SandboxConfig
from selftaught.errors import BudgetExceeded, PromptRejected, ProxyError, RunCapExceeded, SelftaughtError
from selftaught.lm import Caps, Meter, MeteredLM, ScriptedLM
from selftaught.meta_utility import TaskUtility
from selftaught.proxy import (
    ERROR_CLASSES,
    EXTRACT_CODE_SOURCE,
    HELPERS_SOURCE,
    SIGNATURES,
    LMCall,
    extract_code,
    improver_remotes,
    meta_description,
    parse_call,
)
from selftaught.records import Job, LMRequest, LMResponse, Outcome, RemoteSpec
from selftaught.report.steps import step_breakdown
from selftaught.sandbox import ForkServerSandbox, Handler
from selftaught.store import RunRecorder, RunStore
from selftaught.store.reader import StoreReader
from selftaught.tasks import get_task

BUDGETS = Budgets(lm_calls=3, responses_per_call=2, utility_calls=2, improver_timeout_s=20)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ForkServerSandbox]:
    with ForkServerSandbox(SandboxConfig()) as box:
        yield box


class RecordingSandbox:
    """A sandbox that keeps every outcome it returns (what an improver returned, even when the
    broker raises afterwards)."""

    def __init__(self, inner: ForkServerSandbox) -> None:
        self.inner = inner
        self.outcomes: list[Outcome] = []

    @property
    def layers(self) -> tuple[str, ...]:
        return self.inner.layers

    def run(self, job: Job, handler: Handler | None = None) -> Outcome:
        outcome = self.inner.run(job, handler)
        self.outcomes.append(outcome)
        return outcome

    def close(self) -> None:
        pass


def _defined_error_classes() -> dict[str, type[SelftaughtError]]:
    return {name: value for name, value in vars(errors).items()
            if inspect.isclass(value) and issubclass(value, SelftaughtError)}


def test_the_sandbox_raises_the_very_classes_of_errors_py() -> None:
    assert _defined_error_classes() == ERROR_CLASSES  # every class, none copied, none missing
    assert set(ERROR_CLASSES) == set(errors.__all__)
    from selftaught.sandbox import _runner
    assert _runner.ERROR_CLASSES is ERROR_CLASSES  # what the runner puts in the improver's namespace


def test_every_error_class_arrives_in_the_sandbox_with_its_hierarchy(sandbox: ForkServerSandbox) -> None:
    names = sorted(ERROR_CLASSES)
    source = f'''
def f(oracle):
    seen = {{}}
    for name in {names!r}:
        try:
            oracle.ask(name)
        except SelftaughtError as exc:
            caught_as_lm_error = isinstance(exc, LMError) and issubclass(type(exc), LMError)
            seen[name] = [[c.__name__ for c in type(exc).__mro__], str(exc), caught_as_lm_error]
    return seen
'''

    def handler(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        raise ERROR_CLASSES[args[0]](f"raised by the broker as {args[0]}")

    job = Job(source=source, entry="f", calls=(({"$remote": "oracle"},),), call_timeout_s=10,
              remotes=(RemoteSpec("oracle", {}, ("ask",)),))
    outcome = sandbox.run(job, handler)
    assert outcome.ok and outcome.results[0].ok, (outcome.reason, outcome.results)
    seen = outcome.results[0].value
    for name, cls in ERROR_CLASSES.items():
        mro, message, is_lm_error = seen[name]
        assert mro == [c.__name__ for c in cls.__mro__], name
        assert message == f"raised by the broker as {name}"
        assert is_lm_error == issubclass(cls, errors.LMError), name


def test_a_rejected_prompt_is_caught_by_except_lmerror_in_an_improver(sandbox: ForkServerSandbox) -> None:
    def picky(request: LMRequest, k: int) -> str:
        if len(request.user) > 100:
            raise PromptRejected("scripted: the prompt does not fit the context window")
        return "short answer"

    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    broker = Broker(sandbox, ScriptedLM(picky), RunRecorder(store, run_id), BUDGETS, max_tokens=64)
    source = """
def improve_algorithm(initial_solution, utility, language_model):
    try:
        language_model.prompt("e", "x" * 1000, 1, 0.7)
    except LMError as exc:
        return "caught " + type(exc).__name__ + ": " + str(exc)
    return "not caught"
"""
    task = get_task("lpn")
    run = broker.improve(source, task.initial_solution, TaskUtility(broker, task, "train"), "t")
    assert run.solution == "caught PromptRejected: scripted: the prompt does not fit the context window"
    kinds = [kind for (kind,) in store._db.execute("SELECT kind FROM events WHERE run_id=?", (run_id,))]
    assert "prompt_rejected" in kinds


def test_a_run_cap_is_raised_inside_the_improver_and_then_ends_the_run(sandbox: ForkServerSandbox) -> None:
    lm = ScriptedLM(["an answer"])
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    recording = RecordingSandbox(sandbox)
    broker = Broker(recording, MeteredLM(lm, Meter(Caps(max_lm_calls=1))), RunRecorder(store, run_id), BUDGETS,
                    max_tokens=64)
    source = """
def improve_algorithm(initial_solution, utility, language_model):
    seen = []
    for call in (lambda: language_model.prompt("e", "m", 1, 0.5), lambda: language_model.prompt("e", "n", 1, 0.5),
                 lambda: utility(initial_solution)):
        try:
            call()
            seen.append("answered")
        except BudgetExceeded:
            seen.append("budget")
        except RunCapExceeded as exc:
            seen.append("run cap: " + str(exc))
    return repr(seen)
"""
    task = get_task("lpn")
    with pytest.raises(RunCapExceeded, match="run LM call cap reached: 1 calls") as raised:
        broker.improve(source, task.initial_solution, TaskUtility(broker, task, "train"), "t")
    assert not isinstance(raised.value, BudgetExceeded)  # the run's end, not the improver's spent budget
    improver_saw = recording.outcomes[-1].results[0].value
    # The call that hit the cap raised it inside the improver, and so did every later call of the
    # run (the utility too), at once; the LM was asked once.
    assert improver_saw == repr(["answered"] + ["run cap: run LM call cap reached: 1 calls"] * 2)
    assert len(lm.history) == 1
    assert len(recording.outcomes) == 1  # the utility call scored nothing


def test_the_specs_signatures_and_description_agree() -> None:
    utility, language_model = improver_remotes("a description", BUDGETS)
    assert (utility.name, utility.methods) == ("utility", ("__call__",))
    assert utility.attributes == {"str": "a description", "budget": 2}
    assert language_model.attributes == {"budget": 3, "max_responses_per_call": 2}
    assert {(spec.name, method) for spec in (utility, language_model) for method in spec.methods} == set(SIGNATURES)
    description = meta_description(2, BUDGETS)
    for (remote, method), signature in SIGNATURES.items():
        if remote == "language_model":
            assert f"language_model.{method}({', '.join(signature.names)})" in description


def test_calls_are_bound_and_checked_without_allocating() -> None:
    call = parse_call("language_model", "prompt", ["e", "m"], {"n_responses": 10**30})
    assert isinstance(call, LMCall) and call.responses == 10**30 and call.temperature == 0.7
    batch = parse_call("language_model", "batch_prompt", ["e", ["a", "b", "a"]], {"temperature": 1})
    assert isinstance(batch, LMCall) and batch.expanded() == ["a", "b", "a"] and batch.temperature == 1.0
    repeated = parse_call("language_model", "prompt", ["e", "m", 2, 0.1], {})
    assert isinstance(repeated, LMCall) and repeated.expanded() == ["m", "m"]
    for args, kwargs, message in [
        (["e", "m", 1, 0.5, 9], {}, "prompt takes 4 arguments, got 5"),
        (["e"], {}, "prompt is missing message"),
        (["e", "m"], {"top_p": 1}, "prompt got an unexpected argument 'top_p'"),
        (["e", "m", 0], {}, "n_responses must be a positive integer"),
        (["e", "m", 1, float("nan")], {}, "temperature must be a number between 0 and 2"),
        ([3, "m"], {}, "expertise must be a string"),
    ]:
        with pytest.raises(ProxyError, match=message.replace("(", r"\(")):
            parse_call("language_model", "prompt", args, kwargs)
    with pytest.raises(ProxyError, match="utility has no method score"):
        parse_call("utility", "score", [], {})


def test_one_parser_of_fenced_code_for_improvers_and_step_summaries(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(HELPERS_SOURCE, namespace)  # noqa: S102 - our own helper source, as the sandbox runs it
    cut_off = "Idea: ...\n```python\ndef algorithm(x):\n    return x"
    nested = "```python\nx = 1\n```text\ninner\n```\ny = 2\n```"
    for text in (cut_off, nested, "no code", "```\na\n```\n```python\nlonger\n```"):
        assert extract_code(text) == namespace["extract_code"](text)
    assert extract_code(cut_off) is None and extract_code(nested) == "x = 1\n```text\ninner\n```\ny = 2"
    assert EXTRACT_CODE_SOURCE.startswith("def extract_code(text):")
    # The step summary counts a sample cut off inside its only block as holding no code, as the
    # improver that got it found none.
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    RunRecorder(store, run_id).lm_call(LMRequest("s", "u", n=2, tag="t1/r0/c0/g0"),
                                       LMResponse((cut_off, nested), "scripted", finish_reasons=("length", "stop")))
    store.close()
    why = step_breakdown(StoreReader.open(tmp_path / "selftaught.db"), run_id, "t1/")
    assert (why.samples, why.no_code, why.unparsable, why.truncated) == (2, 1, 1, 1)
