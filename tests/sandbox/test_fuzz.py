"""Property-based fuzzing of everything a sandbox can send the broker: the wire reader, the
boundary's cleaning, and the arguments of every proxy method. The broker may only ever raise its
documented errors (``WireError`` for a broken stream; ``ProxyError`` or ``BudgetExceeded`` inside
the improver), and a run of fuzzed improvers finishes. Examples are bounded and derandomized so
the suite stays fast and repeatable."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selftaught.broker import Broker
from selftaught.broker.boundary import Rejected, clean
from selftaught.broker.broker import _ImproverCalls
from selftaught.broker.budget import RunBudget
from selftaught.config import Budgets
from selftaught.errors import BudgetExceeded, ProxyError
from selftaught.lm import ScriptedLM
from selftaught.meta_utility import TaskUtility
from selftaught.records import Job, Outcome
from selftaught.sandbox import ForkServerSandbox
from selftaught.sandbox._wire import FrameReader, Oversized, WireError
from selftaught.store import RunRecorder, RunStore
from selftaught.tasks import get_task

FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

any_text = st.text(st.characters(codec=None, categories=None), max_size=30)  # surrogates included
numbers = (st.integers(min_value=-(2**200), max_value=2**200) | st.sampled_from([10**30, 2**40, -1, 0])
           | st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | any_text,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(any_text, inner, max_size=6),
    max_leaves=30,
)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@FAST
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_any_bytes_give_messages_or_a_wire_error(data: bytes, chunk: int) -> None:
    reader = FrameReader(limit=200, max_items=100, hard_limit=10_000)
    try:
        for start in range(0, len(data), chunk):
            reader.feed(data[start:start + chunk])
    except WireError:
        pass


@FAST
@given(st.lists(json_values, min_size=1, max_size=4), st.integers(min_value=1, max_value=64))
def test_frames_of_any_json_come_back_whole_or_refused(values: list[Any], chunk: int) -> None:
    data = b"".join(frame(json.dumps(value).encode()) for value in values)
    reader = FrameReader(limit=400, max_items=60)
    got: list[Any] = []
    for start in range(0, len(data), chunk):
        got += reader.feed(data[start:start + chunk])
    assert len(got) == len(values) and not reader.pending
    for sent, received in zip(values, got, strict=True):
        if not isinstance(received, Oversized):
            assert json.dumps(received) == json.dumps(sent)


@FAST
@given(json_values)
def test_clean_gives_storable_data_or_rejects(value: Any) -> None:
    try:
        cleaned, _ = clean(value)
    except Rejected:
        return
    json.dumps(cleaned).encode("utf-8")  # what a store, cache or HTTP client does with it
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")


class ConstantUtility:
    """A ``Utility`` that scores every solution 0.5 without running it."""

    description = "constant"

    def __call__(self, solution: str, tag: str) -> float:
        return 0.5


class NoSandbox:
    """A ``Sandbox`` for tests that never run a job."""

    layers = ("none",)

    def run(self, job: Job, handler: Any = None) -> Outcome:
        return Outcome(ok=False, reason="no sandbox")

    def close(self) -> None:
        pass


BUDGETS = Budgets(lm_calls=2, responses_per_call=3, utility_calls=2, improver_timeout_s=10)
METHODS = [("utility", "__call__"), ("language_model", "prompt"), ("language_model", "batch_prompt")]


@FAST
@given(st.sampled_from(METHODS) | st.tuples(any_text, any_text),
       st.lists(json_values, max_size=5), st.dictionaries(any_text | st.sampled_from(
           ["solution", "expertise", "message", "messages", "n_responses", "temperature"]), json_values, max_size=4))
def test_proxy_calls_raise_only_documented_errors(call: tuple[str, str], args: list[Any],
                                                   kwargs: dict[str, Any]) -> None:
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    lm = ScriptedLM(lambda request, k: f"answer {k}")
    broker = Broker(NoSandbox(), lm, RunRecorder(store, run_id), BUDGETS, max_tokens=16)
    program_id = store.add_program(run_id, "improver", "x")
    session = _ImproverCalls(broker, ConstantUtility(), RunBudget(BUDGETS), "fuzz", program_id)
    try:
        answer = session.handle(call[0], call[1], args, kwargs)
    except (ProxyError, BudgetExceeded):
        return
    finally:
        store.close()
    json.dumps(answer).encode("utf-8")  # the reply goes back over the wire as plain data
    for request in lm.history:
        assert 1 <= request.n <= BUDGETS.responses_per_call and math.isfinite(request.temperature)
        (request.system + request.user).encode("utf-8")


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(METHODS), st.lists(json_values, max_size=4)), min_size=1, max_size=6),
       json_values)
def test_a_run_of_fuzzed_improvers_finishes(plain_sandbox: ForkServerSandbox,
                                            calls: list[tuple[tuple[str, str], list[Any]]],
                                            returned: Any) -> None:
    lines = ["def improve_algorithm(initial_solution, utility, language_model):",
             "    inf, nan = float('inf'), float('nan')"]
    for (remote, method), args in calls:
        target = "utility" if remote == "utility" else f"language_model.{method}"
        lines += ["    try:", f"        {target}(*{_literal(args)})", "    except Exception:", "        pass"]
    lines.append(f"    return {_literal(returned)}")
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    broker = Broker(plain_sandbox, ScriptedLM(["x"]), RunRecorder(store, run_id), BUDGETS, max_tokens=16)
    task = get_task("lpn")
    run = broker.improve("\n".join(lines) + "\n", task.initial_solution, TaskUtility(broker, task, "train"), "fz")
    assert run.solution is None or isinstance(run.solution, str)
    assert run.lm_calls <= BUDGETS.lm_calls and run.utility_calls <= BUDGETS.utility_calls
    store.close()


def _literal(value: Any) -> str:
    """Python source for ``value`` (repr, with NaN and infinities spelled so they evaluate)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


@pytest.mark.parametrize("n", [10**30, 2**40, 10**9])
def test_huge_response_counts_are_refused_before_any_allocation(n: int) -> None:
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    broker = Broker(NoSandbox(), ScriptedLM(["x"]), RunRecorder(store, run_id), BUDGETS, max_tokens=16)
    program_id = store.add_program(run_id, "improver", "x")
    session = _ImproverCalls(broker, ConstantUtility(), RunBudget(BUDGETS), "huge", program_id)
    with pytest.raises(BudgetExceeded):
        session.handle("language_model", "prompt", ["e", "m", n, 0.5], {})
