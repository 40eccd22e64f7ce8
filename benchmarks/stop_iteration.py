"""Wall time of a STOP run with one iteration against an LM with a fixed latency, versus its
critical-path lower bound, and the same run made strictly sequential.

The LM is the fake OpenAI-compatible server of ``selftaught.lm.fake_server`` over loopback, every
request answered after ``LATENCY_S`` (scripted answers: ``_common``). The run (task lpn, seed 0,
``REPEATS`` repeats, default budgets) is step 0 (score the seed improver) then step 1 (the seed
improves itself against the meta-utility, and its candidate is scored).

Bound: LM calls that depend on each other form a chain; calls at one level of the chain are
independent and run concurrently, at most ``CONCURRENCY`` (the run's ``lm.concurrency``) at a
time, so a level of k calls takes ``ceil(k / CONCURRENCY)`` waves and no schedule beats
``waves * LATENCY_S``. Evaluations are CPU work that no schedule avoids either: their sum,
each timed alone on an idle 1-worker sandbox, divided by the cores. Bound = both added (a
conservative bound would take the max; the sum is the target the issue sets). Waves:
step 0: ``ESTIMATE_WAVES`` (the seed's one batched call, in ``2 * REPEATS`` parallel runs: val and
test estimates come from separate runs, 6 calls against 4 in flight); step 1: 1 (the seed asks
for ``C`` candidate improvers) + ``C`` (its ``max(candidates, key=utility)`` scores them one after
another; each meta-utility call runs ``REPEATS`` <= ``CONCURRENCY`` improver runs in parallel, one
LM call each) + ``ESTIMATE_WAVES`` (the chosen candidate's val and test estimates); ``C`` =
responses per call. (Until stop 12 the estimates counted one wave, which no run can achieve
with 6 calls and 4 in flight: the bound was 2 s too low.) The run uses
``accept = "best"``, whose val estimate is one batch of runs (the ``sequential`` default adds
paired batches, see ``benchmarks/acceptance.py``).

Sequential: ``lm.concurrency = 1`` (one LM request in flight at a time) and ``sandbox.workers = 1``
(one evaluation at a time); the loop's repeat threads still exist but wait on each other.

Rounds: the parallel run ``--rounds`` times (default 5), the sequential one in the first
``--sequential-rounds`` of them (default 2; it only gives the speed-up), interleaved. Each parallel
round's ratio to the bound is reported, with their median (the figure the target is about) and
their spread (min-max and p10-p90), so one lucky or unlucky round does not decide it.
Run: .venv/bin/python benchmarks/stop_iteration.py   (about 4 minutes on 2 idle cores; 18 measured at load 8-10;
     --sequential-rounds 0 skips the sequential runs, about a third of the time)
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import machine, machine_line, median, scripted_server, write

from selftaught.app import start_run
from selftaught.config import Budgets, LMConfig, RunConfig, SandboxConfig
from selftaught.records import Iteration, Job
from selftaught.sandbox import ForkServerSandbox
from selftaught.tasks import get_task

LATENCY_S = 1.0
REPEATS = 3
ROUNDS = 5  # parallel runs (default), interleaved with the sequential ones
SEQUENTIAL_ROUNDS = 2
TARGET_RATIO = 1.2  # issue 17: median of >= 5 rounds within 1.2x of the bound
CANDIDATES = Budgets().responses_per_call
CONCURRENCY = 4  # the parallel run's lm.concurrency (the default)
assert REPEATS <= CONCURRENCY  # one meta-utility call's runs are one wave
ESTIMATE_WAVES = -(-2 * REPEATS // CONCURRENCY)  # a step's val and test runs, all at once
LEVELS = {"run": ESTIMATE_WAVES + 1 + CANDIDATES + ESTIMATE_WAVES, "step1": 1 + CANDIDATES + ESTIMATE_WAVES}
EXPECTED_CALLS = 2 * REPEATS + 1 + CANDIDATES * REPEATS + 2 * REPEATS


def config(sequential: bool) -> RunConfig:
    return RunConfig(
        task="lpn", iterations=1, repeats=REPEATS, seed=0, accept="best",
        lm=LMConfig(spec="openai:bench-model", concurrency=1 if sequential else CONCURRENCY, max_retries=0),
        budgets=Budgets(improver_timeout_s=300.0),
        sandbox=SandboxConfig(workers=1 if sequential else 2),
    )


def one_run(sequential: bool, base_url: str, runs_dir: Path) -> dict[str, Any]:
    marks: dict[int, float] = {}

    def on_iteration(row: Iteration) -> None:
        marks[row.t] = time.monotonic()

    env = {"OPENAI_API_KEY": "sk-bench-not-a-secret", "OPENAI_BASE_URL": base_url}
    started = time.monotonic()
    summary = start_run(config(sequential), runs_dir, env, on_iteration=on_iteration)
    ended = time.monotonic()
    assert summary.status == "finished", summary.message
    return {"run_id": summary.run_id, "run_s": ended - started, "step0_s": marks[0] - started,
            "step1_s": marks[1] - marks[0], "lm_calls": summary.lm_calls,
            "accepted": [row.accepted for row in summary.iterations],
            "val": [row.val for row in summary.iterations]}


Row = tuple[str, str, str]  # an evaluation's source, split and tag


def replay_rows(db_path: Path, run_id: str) -> list[Row]:
    """The run's solution evaluations, as stored."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT p.source, e.split, e.tag FROM evaluations e JOIN programs p "
                          "ON p.id = e.program_id WHERE e.run_id = ? AND e.task = 'lpn'", (run_id,)).fetchall()
    finally:
        db.close()


def replay_job(source: str, split: str) -> Job:
    task = get_task("lpn")
    instances = task.instances(split)  # type: ignore[arg-type]
    return Job(source=source, entry=task.entry, calls=tuple(i.args for i in instances),
               call_timeout_s=task.call_timeout_s, array_args=task.array_args)


def packed_seconds(rows: list[Row]) -> float:
    """Wall time of all ``rows`` pushed through a two-worker sandbox by 4 caller threads: what
    this machine's cores deliver for them now (taken right after each round, so under that
    round's load)."""
    with ForkServerSandbox(SandboxConfig(workers=2)) as box, ThreadPoolExecutor(4) as pool:
        began = time.perf_counter()
        list(pool.map(lambda item: box.run(replay_job(item[0], item[1])), rows))
        return time.perf_counter() - began


def alone_seconds(rows: list[Row]) -> dict[str, float]:
    """The evaluations replayed without any LM, each timed alone (median of 3) on a one-worker
    sandbox and summed: for the whole run and for step 1."""
    alone: dict[tuple[str, str], float] = {}
    with ForkServerSandbox(SandboxConfig(workers=1)) as box:
        for source, split in sorted({(source, split) for source, split, _ in rows}):
            times = []
            for _ in range(3):
                began = time.perf_counter()
                box.run(replay_job(source, split))
                times.append(time.perf_counter() - began)
            alone[(source, split)] = median(times)
    counts = Counter(split for _, split, _ in rows)
    return {"run": sum(alone[(s, sp)] for s, sp, _ in rows),
            "step1": sum(alone[(s, sp)] for s, sp, tag in rows if tag.startswith("t1/")),
            "evaluations": len(rows), **{f"evaluations_{k}": v for k, v in counts.items()}}


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def q(x: float) -> float:
        position = x * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"median": median(values), "min": ordered[0], "max": ordered[-1], "p10": q(0.1), "p90": q(0.9)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="One STOP iteration versus its critical-path bound.")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"parallel runs (default {ROUNDS})")
    parser.add_argument("--sequential-rounds", type=int, default=SEQUENTIAL_ROUNDS,
                        help=f"sequential runs, for the speed-up (default {SEQUENTIAL_ROUNDS}; 0 skips them)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.sequential_rounds < 0:
        parser.error("--rounds must be at least 1 and --sequential-rounds at least 0")
    info = machine()
    cores = int(info["cores"] or 1)
    results: dict[str, list[dict[str, Any]]] = {"parallel": [], "sequential": []}
    with tempfile.TemporaryDirectory() as tmp, scripted_server(LATENCY_S) as server:
        for round_ in range(max(args.rounds, args.sequential_rounds)):
            modes = [m for m, n in (("parallel", args.rounds), ("sequential", args.sequential_rounds)) if round_ < n]
            for mode in modes:
                runs_dir = Path(tmp) / f"{mode}-{round_}"
                outcome = one_run(mode == "sequential", server.base_url, runs_dir)
                outcome["load_average"] = round(os.getloadavg()[0], 2)
                if mode == "parallel":
                    rows = replay_rows(runs_dir / "selftaught.db", outcome["run_id"])
                    outcome["packed_s"] = packed_seconds(rows)
                    outcome["evaluations"] = len(rows)
                results[mode].append(outcome)
                print(mode, round_, {k: outcome.get(k) for k in ("run_s", "step1_s", "lm_calls", "packed_s")},
                      flush=True)
        first = results["parallel"][0]
        evals = alone_seconds(replay_rows(Path(tmp) / "parallel-0" / "selftaught.db", first["run_id"]))
    calls = {o["lm_calls"] for runs in results.values() for o in runs}
    parts = ("run", "step1")
    chain = {part: LEVELS[part] * LATENCY_S for part in parts}
    bound = {part: chain[part] + evals[part] / cores for part in parts}
    share = {"run": 1.0, "step1": evals["step1"] / evals["run"]}  # step 1's part of a packed pass
    packed_bounds = {part: [chain[part] + o["packed_s"] * share[part] for o in results["parallel"]]
                     for part in parts}
    packed_bound = {part: median(packed_bounds[part]) for part in parts}
    serial = {"run": EXPECTED_CALLS * LATENCY_S + evals["run"],
              "step1": (EXPECTED_CALLS - 2 * REPEATS) * LATENCY_S + evals["step1"]}
    med = {mode: {part: median([o[f"{part}_s"] for o in runs]) for part in parts}
           for mode, runs in results.items() if runs}
    ratios = {part: [o[f"{part}_s"] / bound[part] for o in results["parallel"]] for part in parts}
    packed = {part: [o[f"{part}_s"] / b for o, b in zip(results["parallel"], packed_bounds[part], strict=True)]
              for part in parts}
    report = {
        "machine": info, "latency_s": LATENCY_S, "repeats": REPEATS, "rounds": args.rounds,
        "sequential_rounds": args.sequential_rounds, "candidates": CANDIDATES,
        "levels": LEVELS, "lm_calls_expected": EXPECTED_CALLS, "lm_calls_seen": sorted(calls),
        "evaluation_s": evals, "bound_s": bound, "packed_bound_s": packed_bound, "fully_serial_s": serial,
        "median_s": med,
        "ratio_to_bound": {part: med["parallel"][part] / bound[part] for part in parts},
        "ratio_to_bound_by_round": {part: [round(r, 3) for r in ratios[part]] for part in parts},
        "ratio_to_bound_spread": {part: spread(ratios[part]) for part in parts},
        "ratio_to_packed_bound": {part: median(packed[part]) for part in parts},
        "ratio_to_packed_bound_by_round": {part: [round(r, 3) for r in packed[part]] for part in parts},
        "ratio_to_packed_bound_spread": {part: spread(packed[part]) for part in parts},
        "speedup_vs_sequential": {part: med["sequential"][part] / med["parallel"][part] for part in parts}
        if "sequential" in med else None,
        "speedup_vs_fully_serial": {part: serial[part] / med["parallel"][part] for part in parts},
        "target_ratio": TARGET_RATIO, "runs": results,
    }
    report["target_met"] = all(r <= TARGET_RATIO for r in report["ratio_to_bound"].values())
    report["target_met_packed"] = all(r <= TARGET_RATIO for r in report["ratio_to_packed_bound"].values())
    write("stop_iteration", report, markdown(report))


def markdown(r: dict[str, Any]) -> str:
    ev, med = r["evaluation_s"], r["median_s"]
    lines = [
        "# One STOP iteration: wall time versus its critical-path bound",
        "",
        machine_line(r["machine"]),
        "",
        f"Run: task lpn, seed 0, iterations 1 (step 0 scores the seed improver, step 1 improves it), "
        f"repeats {r['repeats']}, default budgets; every LM request answered by a local fake "
        f"OpenAI-compatible server after **{r['latency_s']:.1f} s**. The parallel run ran {r['rounds']} times, "
        f"the sequential one {r['sequential_rounds']} times, interleaved; medians shown, with the spread of the "
        f"parallel rounds' ratios (min-max; p10-p90). LM calls per run: {', '.join(map(str, r['lm_calls_seen']))} "
        f"(the model below predicts {r['lm_calls_expected']}).",
        "",
        "| part | parallel, median s | bound s (ideal cores) | parallel / bound: median (min-max; p10-p90) "
        "| bound s (measured cores, median) | parallel / bound: median (min-max) | sequential config, median s "
        "| speed-up | fully serial s | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for part, label in (("run", "whole run (steps 0 and 1)"), ("step1", "step 1 alone")):
        ideal, measured = r["ratio_to_bound_spread"][part], r["ratio_to_packed_bound_spread"][part]
        sequential = (f"{med['sequential'][part]:.2f} | {r['speedup_vs_sequential'][part]:.2f}x"
                      if r["speedup_vs_sequential"] else "- | -")
        lines.append(
            f"| {label} | {med['parallel'][part]:.2f} | {r['bound_s'][part]:.2f} "
            f"| **{ideal['median']:.2f}x** ({ideal['min']:.2f}-{ideal['max']:.2f}; "
            f"{ideal['p10']:.2f}-{ideal['p90']:.2f}) | {r['packed_bound_s'][part]:.2f} "
            f"| **{measured['median']:.2f}x** ({measured['min']:.2f}-{measured['max']:.2f}) "
            f"| {sequential} "
            f"| {r['fully_serial_s'][part]:.2f} | **{r['speedup_vs_fully_serial'][part]:.2f}x** |")
    runs = r["runs"]["parallel"]
    lines += [
        "",
        "Parallel rounds, whole run / bound (ideal cores; measured cores): " + ", ".join(
            f"{ideal:.2f}x; {measured:.2f}x (load {o['load_average']:.1f})"
            for ideal, measured, o in zip(r["ratio_to_bound_by_round"]["run"],
                                          r["ratio_to_packed_bound_by_round"]["run"], runs, strict=True)) + ".",
    ]
    lines += [
        "",
        f"Target (issue 17), median parallel run within {r['target_ratio']}x of the bound: "
        f"**{'met' if r['target_met'] else 'not met'}** against the ideal-cores bound, "
        f"**{'met' if r['target_met_packed'] else 'not met'}** against the measured-cores bound.",
        "",
        "## How the bound is computed",
        "",
        f"- **LM chain.** Calls that need an earlier call's answer form a chain; calls at one level are "
        f"independent and run at once, at most {CONCURRENCY} in flight (`lm.concurrency`), so a level of "
        f"k calls takes ceil(k / {CONCURRENCY}) waves. Step 0 has {ESTIMATE_WAVES} (the seed's one batched "
        f"call in each of the {2 * r['repeats']} val and test runs). Step 1 has 1 (the seed asks for "
        f"{r['candidates']} improvers in one call) + {r['candidates']} (its `max(candidates, key=utility)` "
        f"scores them one after another; each meta-utility call's {r['repeats']} repeats make one LM call "
        f"each, one wave) + {ESTIMATE_WAVES} (the chosen candidate's val and test runs) = "
        f"{r['levels']['step1']} waves. Whole run: {r['levels']['run']} waves x {r['latency_s']:.1f} s. "
        "(Until stop 12 a step's val and test runs counted one wave, which 6 calls with 4 in flight "
        "cannot achieve: that bound was 2 s too low.)",
        f"- **Evaluation CPU.** The run's solution evaluations ({ev['evaluations']}: "
        f"{ev.get('evaluations_train', 0)} train, {ev.get('evaluations_val', 0)} val, "
        f"{ev.get('evaluations_test', 0)} test) replayed without any LM. *Ideal cores*: each timed alone "
        f"on a one-worker sandbox (median of 3, once, after the rounds) and summed ({ev['run']:.2f} s in the run, "
        f"{ev['step1']:.2f} s in step 1), divided by {r['machine']['cores']} cores: the bound idle cores would "
        "give. *Measured cores*: right after each parallel round, that round's evaluations pushed through a "
        "two-worker sandbox by 4 threads (one pass; step 1's share in proportion to its alone time), so each "
        "round is held to what the machine's cores delivered under that round's load (two vCPUs of a shared "
        f"machine are not two idle cores); median bound {r['packed_bound_s']['run']:.2f} s.",
        "- **Bound** = chain x latency + evaluation time. Not counted: sandbox start-up, improver jobs (fork, "
        "exec, code extraction), HTTP, the run store and the per-step safety scan; the ratio measures them, "
        "and the scheduling loss of sequential utility calls inside each improver run.",
        "- **Sequential config** = `lm.concurrency = 1` (one LM request in flight) and `sandbox.workers = 1` "
        "(one evaluation at a time). The loop still runs a meta-utility's repeats in threads, so one "
        "repeat's evaluations overlap another's LM wait; **fully serial** is what running everything one "
        f"after another would take: all {r['lm_calls_expected']} calls x latency + the evaluations' "
        "summed alone time.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main(sys.argv[1:])
