"""The run store: what a run writes is there after a reopen, programs dedupe, bad ids are errors."""

from pathlib import Path

import pytest

from selftaught.errors import StoreError
from selftaught.records import Iteration, LMRequest, LMResponse
from selftaught.store import RunRecorder, RunStore


def test_everything_written_survives_reopening(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "openai:m", 3, {"repeats": 2}, ["rlimits"])
    recorder = RunRecorder(store, run_id)
    seed = recorder.program("improver", "def improve_algorithm(s, u, l): return s")
    child = recorder.program("improver", "def improve_algorithm(s, u, l): return s + ''", parent_id=seed)
    recorder.evaluation(child, "t1/eval/r0/val", "lpn", "val", 0.75, 20, 1, "timeout", 0.5)
    recorder.lm_call(LMRequest("sys", "hi", n=2, tag="t1/c0"),
                     LMResponse(("a", "b"), "m", 5, 7, 0.1, finish_reasons=("stop", "length"), cached_prompt_tokens=3))
    recorder.lm_call(LMRequest("sys", "hi", n=1, tag="t1/c1"), LMResponse(("a",), "m", cached=True))
    recorder.iteration(Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.5, val_se=0.01, test=0.5,
                                 test_se=0.02, accepted=True, reason="seed"))
    recorder.iteration(Iteration(t=1, candidate_id=child, incumbent_id=child, val=0.75, val_se=0.0, test=0.7,
                                 test_se=0.0, accepted=True, reason="adopted"))
    store.set_status(run_id, "finished")
    store.close()

    again = RunStore.in_dir(tmp_path)
    run = again.get_run(run_id)
    assert (run.status, run.task, run.seed, run.config, run.sandbox_layers) == ("finished", "lpn", 3, {"repeats": 2},
                                                                               ["rlimits"])
    assert [row.t for row in again.iterations(run_id)] == [0, 1]
    assert again.iterations(run_id)[1].val == 0.75
    assert again.program_source(child).endswith("s + ''")
    assert again.lm_totals(run_id) == {"calls": 2, "completions": 3, "prompt_tokens": 5, "completion_tokens": 7,
                                       "cost_usd": 0.0, "cached_calls": 1, "new_calls": 1, "truncated": 1,
                                       "estimated_calls": 0, "cached_prompt_tokens": 3}
    assert again.count("evaluations", run_id) == 1


def test_same_program_is_stored_once_per_run() -> None:
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", "x", 0, {}, [])
    first = store.add_program(run_id, "solution", "def algorithm(): pass")
    assert store.add_program(run_id, "solution", "def algorithm(): pass") == first
    assert store.add_program(run_id, "improver", "def algorithm(): pass") != first


def test_unknown_run_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="no run 'nope'"):
        RunStore(":memory:").get_run("nope")


def test_cache_entries_are_per_run() -> None:
    store = RunStore(":memory:")
    a = store.create_run("lpn", "x", 0, {}, [])
    b = store.create_run("lpn", "x", 0, {}, [])
    store.cache_put(a, "k", "text", {})
    assert store.cache_get(a, "k") == "text"
    assert store.cache_get(b, "k") is None


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    store._db.execute("INSERT INTO _migrations VALUES ('m999_future', 0)")
    store.close()
    with pytest.raises(StoreError, match="newer selftaught"):
        RunStore.in_dir(tmp_path)


def test_a_lone_surrogate_in_any_text_is_stored_repaired(tmp_path: Path) -> None:
    """LM answers, error texts and names reach many columns; none of them may make a write raise."""
    bad, repaired = "x\ud800y", "x\ufffdy"
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run(bad, bad, 1, {"note": bad}, [bad])
    store.set_status(run_id, "failed", bad)
    program = store.add_program(run_id, "improver", bad)
    store.add_findings(run_id, program, [(bad, bad, 1)])
    store.add_strategy_tags(run_id, program, [bad], bad)
    store.add_iteration(run_id, Iteration(t=0, candidate_id=program, incumbent_id=program, val=None, val_se=None,
                                          test=None, test_se=None, accepted=True, reason=bad))
    store.add_evaluation(run_id, program, bad, bad, "val", 0.5, 1, 0, bad, 0.1)
    store.add_event(run_id, bad, bad, program)
    store.add_lm_call(run_id, LMRequest(bad, bad, tag=bad), LMResponse((bad,), bad))
    store.close()

    again = RunStore.in_dir(tmp_path)
    run = again.get_run(run_id)
    assert (run.task, run.lm, run.message) == (repaired, repaired, repaired)
    assert again.iterations(run_id)[0].reason == repaired
    assert again.program_source(program) == repaired
    assert again.count("events", run_id) == again.count("lm_calls", run_id) == 1
