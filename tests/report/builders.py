"""A run store filled through ``RunStore`` for the report and dashboard tests, hostile text included."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from selftaught.records import Iteration, LMRequest, LMResponse
from selftaught.store import RunRecorder, RunStore, TransferEntry

XSS_RESPONSE = "```python\n<script>window.__xss = 1; alert(1)</script>\n```"
XSS_SOURCE = 'def improve_algorithm(s, u, lm):\n    """</pre><script>window.__xss = 2</script>"""\n    return s\n'
SEED = "def improve_algorithm(initial_solution, utility, language_model):\n    return initial_solution\n"
CHILD = SEED.replace("return initial_solution", "best = initial_solution\n    return best  # beam search")


@dataclass(frozen=True)
class Built:
    db_path: Path
    finished: str
    running: str
    empty: str
    seed_id: int
    child_id: int
    hostile_id: int
    solution_id: int
    hostile_call: int


def build_store(runs_dir: Path) -> Built:
    """Three runs: a finished one with a lineage, findings, tags, evaluations and LM calls (some
    hostile); a running one with missing standard errors; an empty one with no iterations."""
    store = RunStore.in_dir(runs_dir)
    finished = store.create_run("lpn", "openai:gpt-x", 0, {"iterations": 3, "repeats": 2}, ["rlimits"])
    rec = RunRecorder(store, finished)
    seed = rec.program("improver", SEED)
    rec.iteration(Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.50, val_se=0.02, test=0.48, test_se=0.03,
                            accepted=True, reason="seed improver"))
    child = rec.program("improver", CHILD, parent_id=seed)
    store.add_strategy_tags(finished, child, ["beam_search"], "code")
    rec.iteration(Iteration(t=1, candidate_id=child, incumbent_id=child, val=0.62, val_se=0.02, test=0.60, test_se=0.03,
                            accepted=True, reason="adopted: val 0.62 > 0.50"))
    hostile = rec.program("improver", XSS_SOURCE, parent_id=child)
    store.add_findings(finished, hostile, [("sandbox_disable", "use_sandbox=False <b>bold</b>", 2)])
    reason = "kept incumbent <script>window.__xss = 3</script>"
    rec.iteration(Iteration(t=2, candidate_id=hostile, incumbent_id=child, val=0.40, val_se=0.05, test=0.41,
                            test_se=0.04, accepted=False, reason=reason))
    rec.iteration(Iteration(t=3, candidate_id=None, incumbent_id=child, val=None, val_se=None, test=None, test_se=None,
                            accepted=False, reason="no candidate: crashed"))
    solution = rec.program("solution", "def algorithm(x):\n    return x\n")
    for t in range(3):
        for split in ("val", "test"):
            rec.evaluation(solution, f"t{t}/eval/r0/{split}", "lpn", split, 0.5, 20, 1, "timeout", 0.25)
    calls = [("t0/eval/r0/c0", "return the best solution", "```python\ndef algorithm(x): return x\n```"),
             ("t1/improve/c0", "improve this improver", XSS_RESPONSE),
             ("t2/improve/c0", "improve again", "no code here")]
    for tag, prompt, text in calls:
        rec.lm_call(LMRequest("You are an expert.", prompt, n=1, tag=tag),
                    LMResponse((text,), "gpt-x", 120, 40, 0.8, False, 0.002))
    store.set_status(finished, "finished")

    running = store.create_run("lpn", "scripted", 1, {}, [])
    rec2 = RunRecorder(store, running)
    seed2 = rec2.program("improver", SEED)
    rec2.iteration(Iteration(t=0, candidate_id=seed2, incumbent_id=seed2, val=0.45, val_se=None, test=None,
                             test_se=None, accepted=True, reason="seed improver"))
    empty = store.create_run("maxcut", "scripted", 2, {}, [])
    store.set_status(empty, "failed", "the LM <img src=x> was down")
    store.close()
    with closing(sqlite3.connect(runs_dir / "selftaught.db")) as db:
        hostile_call = int(db.execute(
            "SELECT id FROM lm_calls WHERE run_id=? AND tag='t1/improve/c0'", (finished,)).fetchone()[0])
    return Built(runs_dir / "selftaught.db", finished, running, empty, seed, child, hostile, solution, hostile_call)


# Markup that would do something if a page let it through as markup: a script, an attribute
# breakout with an event handler, the end of a textarea/title, an SVG with onload.
ATTACKS = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "</textarea></title>",
           "'><svg onload=alert(1)>")
HOSTILE = " ".join(ATTACKS)
SURROGATE = "\udcff"  # a lone surrogate: not encodable as UTF-8


@dataclass(frozen=True)
class HostileBuilt:
    db_path: Path
    stop: str
    improve: str
    programs: list[tuple[str, int]]  # (run id, program id)
    calls: list[int]


def build_hostile_store(runs_dir: Path) -> HostileBuilt:
    """Two runs (a STOP loop and an ``improve`` run with a transfer table) whose every free-text field
    holds ``HOSTILE``: task and LM names, a status and run message, program sources, iteration and
    evaluation reasons, tags, findings, strategy tags, events, LM prompts and answers, config values.
    Lone surrogates go where the store keeps text that may hold them: LM answers (stored as JSON,
    read back with the surrogate), config values, evaluation reasons, event details, LM prompts."""
    store = RunStore.in_dir(runs_dir)
    stop = store.create_run(HOSTILE, HOSTILE, 0, {"iterations": 2, HOSTILE: HOSTILE + SURROGATE}, [HOSTILE])
    rec = RunRecorder(store, stop)
    seed = rec.program("improver", f"def improve_algorithm(s, u, lm):\n    return s  # {HOSTILE}\n")
    rec.iteration(Iteration(t=0, candidate_id=seed, incumbent_id=seed, val=0.5, val_se=0.02, test=0.5,
                            test_se=0.02, accepted=True, reason=HOSTILE))
    child = rec.program("improver", f"def improve_algorithm(s, u, lm):\n    '''{HOSTILE}{SURROGATE}'''\n    return s\n",
                        parent_id=seed)
    store.add_findings(stop, child, [(HOSTILE, HOSTILE, 2)])
    store.add_strategy_tags(stop, child, [HOSTILE], HOSTILE)
    rec.iteration(Iteration(t=1, candidate_id=child, incumbent_id=seed, val=0.4, val_se=0.02, test=0.4,
                            test_se=0.02, accepted=False, reason=HOSTILE))
    solution = rec.program("solution", f"def algorithm(x):\n    return {HOSTILE!r}\n")
    rec.evaluation(solution, f"t1/eval/r0/{HOSTILE}", HOSTILE, HOSTILE, 0.5, 3, 1, HOSTILE + SURROGATE, 0.1)
    rec.event(HOSTILE, HOSTILE + SURROGATE, child)
    rec.event("truncated", HOSTILE + SURROGATE)
    rec.lm_call(LMRequest(HOSTILE + SURROGATE, HOSTILE + SURROGATE, n=2, tag=HOSTILE),
                LMResponse((f"```python\n{HOSTILE}\n```{SURROGATE}", HOSTILE + SURROGATE), HOSTILE, 10, 5, 0.1, False,
                           0.001, finish_reasons=(HOSTILE, "length")))
    store.set_status(stop, HOSTILE, HOSTILE)

    improve = store.create_run(HOSTILE, HOSTILE, 1, {"note": HOSTILE}, [], kind="improve")
    rec2 = RunRecorder(store, improve)
    initial = rec2.program("solution", f"def algorithm(x):\n    return None  # {HOSTILE}\n")
    new = rec2.program("solution", f"def algorithm(x):\n    return {HOSTILE!r}\n")
    for split in ("val", "test"):
        rec2.evaluation(initial, f"improve/initial/{split}", HOSTILE, split, 0.4, 3, 0, HOSTILE, 0.1)
        rec2.evaluation(new, f"improve/{split}", HOSTILE, split, 0.6, 3, 1, HOSTILE + SURROGATE, 0.1)
    store.add_transfer(improve, [TransferEntry(new, HOSTILE, HOSTILE, HOSTILE, "test", 2, 0.6, 0.1, 0.4, 0.1,
                                               0.2, 0.05)])
    rec2.event("improver_failed", f"improve/c0: {HOSTILE}", new)
    store.set_status(improve, "failed", HOSTILE)
    store.close()
    with closing(sqlite3.connect(runs_dir / "selftaught.db")) as db:
        programs = [(str(run), int(pid)) for run, pid in db.execute("SELECT run_id, id FROM programs ORDER BY id")]
        calls = [int(row[0]) for row in db.execute("SELECT id FROM lm_calls ORDER BY id")]
    return HostileBuilt(runs_dir / "selftaught.db", stop, improve, programs, calls)
