"""Progress lines explain themselves: u(s) beside the scores, what went wrong, and a verdict in words."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console

from selftaught.progress import ProgressView, format_iteration, verdict
from selftaught.records import Iteration, LMRequest, LMResponse
from selftaught.report.steps import classify_failure, step_breakdown
from selftaught.store import RunRecorder, RunStore
from selftaught.store.reader import StoreReader

GOOD = "```python\ndef algorithm(x):\n    return x\n```"
BROKEN = "Idea: flip bits.\n```python\ndef algorithm(x:\n    return\n```"
PROSE = "I would use Gaussian elimination."


def _store_with_a_failing_step(runs_dir: Path) -> tuple[Path, str]:
    store = RunStore.in_dir(runs_dir)
    run_id = store.create_run("lpn", "scripted", 0, {}, [])
    rec = RunRecorder(store, run_id)
    seed = rec.program("improver", "def improve_algorithm(s, u, lm):\n    return s\n")
    initial = rec.program("solution", "def algorithm(x):\n    return 0\n")
    rec.evaluation(initial, "initial/val", "lpn", "val", 0.5, 20, 0, "", 0.1)
    rec.evaluation(initial, "initial/test", "lpn", "test", 0.49, 50, 0, "", 0.1)
    rec.lm_call(LMRequest("sys", "improve", n=4, tag="t1/eval/r0/c0/g0"),
                LMResponse((GOOD, BROKEN, BROKEN, PROSE), "scripted"))
    rec.lm_call(LMRequest("sys", "other step", n=1, tag="t2/eval/r0/c0/g0"), LMResponse((BROKEN,), "scripted"))
    broken = rec.program("solution", "def algorithm(x:\n    return\n")
    crash = rec.program("solution", "def algorithm(x):\n    return 1 / 0\n")
    rec.evaluation(broken, "t1/eval/r0/u0", "lpn", "train", 0.0, 20, 20, "SyntaxError: '(' was never closed (line 1)",
                   0.1)
    rec.evaluation(crash, "t1/eval/r0/u1", "lpn", "train", 0.0, 20, 20, "ZeroDivisionError: division by zero", 0.1)
    rec.evaluation(initial, "t1/eval/r0/val", "lpn", "val", 0.5, 20, 0, "", 0.1)
    rec.event("improver_failed", "t1/eval/r1: TimeoutError: improver ran over 600 s", seed)
    rec.event("improver_failed", "t2/eval/r1: RuntimeError: boom", seed)
    store.close()
    return runs_dir / "selftaught.db", run_id


def test_a_step_line_shows_u_of_s_and_the_verdict_word() -> None:
    row = Iteration(t=1, candidate_id=3, incumbent_id=2, val=0.25, val_se=0.05, test=0.3, test_se=0.04, accepted=False,
                    reason="kept incumbent: val 0.25 <= 0.5")
    line = format_iteration(row, 2, {"val": 0.5, "test": 0.49})
    assert line.startswith("step 1/2  val 0.250 ± 0.050  test 0.300 ± 0.040  [u(s): val 0.500 test 0.490]")
    assert "rejected" in line
    seed = format_iteration(Iteration(t=0, candidate_id=1, incumbent_id=1, val=0.5, val_se=0.0, test=0.5, test_se=0.0,
                                      accepted=True, reason="seed improver"), 2)
    assert seed.startswith("step 0/2") and "seed  (seed improver)" in seed and "u(s)" not in seed


def test_the_breakdown_counts_each_kind_of_failure_of_one_step(tmp_path: Path) -> None:
    db_path, run_id = _store_with_a_failing_step(tmp_path)
    db = StoreReader.open(db_path)
    why = step_breakdown(db, run_id, "t1/")
    assert (why.samples, why.unparsable, why.no_code) == (4, 2, 1)
    assert why.evaluations == 3 and why.failures == {"did not parse": 1, "raised": 1}
    assert why.improver_failures == 1 and why.improver_errors == {"timeout": 1}
    assert why.summary() == ("4 samples: 2 did not parse, 1 had no code block; of 3 solution runs: "
                             "1 did not parse, 1 raised (ZeroDivisionError); 1 improver run failed (timeout)")
    assert step_breakdown(db, run_id, "t3/").summary() == ""  # nothing recorded: nothing to explain


def test_failure_reasons_are_classified() -> None:
    assert classify_failure("SyntaxError: invalid syntax (line 3)") == ("did not parse", "SyntaxError")
    assert classify_failure("timeout after 2.0 s") == ("timed out", "timeout")
    assert classify_failure("invalid output: shape (3,) is not (20,)") == ("returned the wrong output", "")
    assert classify_failure("error while loading: ModuleNotFoundError: No module named 'sklearn'") == (
        "raised", "ModuleNotFoundError")
    assert classify_failure("entry 'algorithm' is not defined") == ("lacked the entry function", "")


def test_the_verdict_says_whether_the_run_improved() -> None:
    seed = Iteration(t=0, candidate_id=1, incumbent_id=1, val=0.40, val_se=0.01, test=0.41, test_se=0.01, accepted=True,
                     reason="seed improver")
    better = Iteration(t=1, candidate_id=2, incumbent_id=2, val=0.55, val_se=0.01, test=0.52, test_se=0.01,
                       accepted=True, reason="adopted")
    worse = Iteration(t=1, candidate_id=2, incumbent_id=1, val=0.10, val_se=0.01, test=0.12, test_se=0.01,
                      accepted=False, reason="kept incumbent")
    none = Iteration(t=1, candidate_id=None, incumbent_id=1, val=None, val_se=None, test=None, test_se=None,
                     accepted=False, reason="no candidate: crashed")
    assert verdict([seed, better], {"val": 0.5, "test": 0.5}) == (
        "adopted step 1's improver: val 0.550 vs the seed's 0.400 (test 0.520 vs 0.410, from separate runs); "
        "the final improver's solutions beat the initial solution: test 0.520 vs u(s) 0.500")
    text = verdict([seed, worse], {"val": 0.5, "test": 0.5})
    assert text.startswith("did not improve on the seed improver: no candidate was adopted")
    assert "nothing beat the initial solution: the final improver's test 0.410" in text
    # A rejected candidate that happened to score higher is not what the run ends with.
    lucky = Iteration(t=1, candidate_id=2, incumbent_id=1, val=0.45, val_se=0.01, test=0.90, test_se=0.01,
                      accepted=False, reason="kept incumbent")
    text = verdict([seed, lucky], {"val": 0.5, "test": 0.5})
    assert text.startswith("did not improve") and "test 0.410 vs u(s) 0.500" in text
    assert verdict([seed, none]).startswith("no step produced a candidate improver")
    assert verdict([]) == "no step finished, so there is nothing to compare"


def test_without_a_terminal_lines_are_plain_unwrapped_and_explained(tmp_path: Path) -> None:
    db_path, run_id = _store_with_a_failing_step(tmp_path)
    out = io.StringIO()
    view = ProgressView(2, Console(file=out, width=80, force_terminal=False, soft_wrap=True), heartbeat_s=0.05)
    with view:
        view.watch(run_id, str(db_path))
        view.record("lm_call")
        deadline = time.monotonic() + 30
        while "…" not in out.getvalue() and time.monotonic() < deadline:  # a silent stretch gets a status line
            time.sleep(0.01)
        view.heartbeat_s = 1e9  # no more status lines: the rest of the output is deterministic
        time.sleep(0.1)
        view.iteration(Iteration(t=1, candidate_id=3, incumbent_id=2, val=0.25, val_se=0.05, test=0.3, test_se=0.04,
                                 accepted=False, reason="kept incumbent: val 0.2500 <= 0.5000"))
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("…")][:2]
    lines.insert(0, next(line for line in out.getvalue().splitlines() if line.startswith("…")))
    assert lines[0].startswith("… step 0 (scoring the seed improver) · LM calls 1")
    assert lines[1].startswith("step 1/2") and "[u(s): val 0.500 test 0.490]" in lines[1] and len(lines[1]) > 80
    assert lines[2].strip().startswith("why: 4 samples: 2 did not parse")
    assert "\x1b[" not in out.getvalue()  # no terminal codes in a log
