"""Mutation check: one-line changes to the rules that decide what a run adopts, counts and scores.

Each mutation below (of ``stop.py``, ``meta_utility.py``, the broker's budgets and score bound, and
the task scorers) is applied to a temporary copy of the tree (the real files are never touched)
and the fast tests that guard that code run against the copy (``pytest -x -m "not slow"``, with a
time limit per mutation). A mutation is *killed* when a test fails, *survived* when they all pass.
A survivor is a rule the suite does not pin: add a test, or say in the README why it may stay.

    .venv/bin/python scripts/mutation_check.py            # all mutations (a few minutes)
    .venv/bin/python scripts/mutation_check.py -k budget  # those whose file or text matches
    .venv/bin/python scripts/mutation_check.py --list     # what would run
    .venv/bin/python scripts/mutation_check.py -k "rejected candidate" --tests tests/test_estimates.py

Exit status: 0 when every mutation was killed, 1 when one survived, 2 when a mutation no longer
matches its file (the code moved on: update the list) or the unmutated tree fails its tests.
Not part of ``pytest``: it runs the fast tests once per mutation.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".*_cache", "runs", "node_modules", "*.egg-info")

RULES = ("tests/test_rules.py", "tests/test_acceptance.py", "tests/test_estimates.py")
BUDGET = ("tests/test_budget.py",)
TASKS = ("tests/tasks/test_task_transfer.py", "tests/tasks/test_task_reference.py", "tests/tasks/test_task_lpn.py",
         "tests/tasks/test_task_plugin.py", "tests/tasks/test_task_scorer_edges.py")


@dataclass(frozen=True)
class Mutation:
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    what: str
    tests: tuple[str, ...]


M = Mutation
MUTATIONS = [
    # stop.py: the acceptance rules, the looks, the tags, the resume bar
    M("selftaught/stop.py", "adopted = val.mean > incumbent_val", "adopted = val.mean >= incumbent_val",
      "best rule adopts ties", RULES),
    M("selftaught/stop.py", "adopted = val.mean > 0.0", "adopted = val.mean >= 0.0",
      "paper rule adopts a candidate that scored 0", RULES),
    M("selftaught/stop.py", "bar = row.val if row.accepted and row.val is not None",
      "bar = row.val if row.val is not None", "a rejected candidate's val becomes the bar (live and resume)", RULES),
    M("selftaught/stop.py", "        for row in history:\n            state = state.after(row)",
      "        for row in history[-1:]:\n            state = state.after(row)",
      "resume reads only the last stored step", RULES),
    M("selftaught/stop.py", "state = state.after(row)\n    return rows",
      "state = LoopState(t + 1, row.incumbent_id, state.incumbent_val)\n    return rows",
      "the running loop keeps its first bar (resume and the live loop part ways)", RULES),
    M("selftaught/stop.py", "return [(n, ALPHA * (n / total)) for n in sizes]", "return [(n, ALPHA) for n in sizes]",
      "every sequential look spends the whole alpha", RULES),
    M("selftaught/stop.py", "sizes = list(range(first, cap, first)) + [cap]", "sizes = [cap]",
      "the sequential rule looks only at the cap", RULES),
    M("selftaught/stop.py", "cap = max(config.max_repeats, k) if", "cap = k if",
      "the sequential rule ignores max_repeats", RULES),
    M("selftaught/stop.py", "if adopted or mean <= 0.0 or last:", "if adopted or last:",
      "the sequential rule never stops early for no sign of improvement", RULES),
    M("selftaught/stop.py", "adopted = lower > 0.0 and (se is not None or last)", "adopted = lower > 0.0",
      "one pair without a spread adopts before the last look", RULES),
    M("selftaught/stop.py", "meta.runs([(incumbent, i) for i in new], tag,", "meta.runs([(incumbent, i) for i in new], "
      "tag + '/incumbent',", "the paired incumbent runs on tags of its own", RULES),
    M("selftaught/stop.py", "t_quantile(1.0 - alpha, len(candidate) - 1)", "t_quantile(1.0 - alpha, len(candidate))",
      "Student's t with k instead of k - 1 degrees of freedom", RULES),
    M("selftaught/stop.py", 'f"{step}/eval/test"', 'f"{step}/eval/val"',
      "the test estimate reuses the val runs' tags", RULES),
    M("selftaught/stop.py", "from selftaught.tasks.base import Task\n",
      "from selftaught.tasks.base import Task\nfrom selftaught import app  # noqa: F401\n",
      "the loop imports the composition root (an upward import)", ("tests/test_layers.py",)),
    # broker: the trusted bound on every score
    M("selftaught/broker/broker.py", "value = min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0",
      "value = value if math.isfinite(value) else 0.0", "the broker passes out-of-range scores on",
      ("tests/test_broker_scores.py",)),
    # meta_utility.py: what an improver optimises and what its runs score
    M("selftaught/meta_utility.py", 'TaskUtility(self.broker, self.task, "train")',
      'TaskUtility(self.broker, self.task, "val")', "improvers optimise the val utility", RULES),
    M("selftaught/meta_utility.py", 'self.estimate(solution, tag, ("train",))["train"]',
      'self.estimate(solution, tag, ("val",))["val"]', "the meta-utility improvers see scores val", RULES),
    M("selftaught/meta_utility.py", "return {split: 0.0 for split in splits}",
      "return {split: 0.5 for split in splits}", "a run that returns nothing scores 0.5", RULES),
    M("selftaught/meta_utility.py", "for i in range(self.repeats)]", "for i in range(1, self.repeats + 1)]",
      "an estimate's runs are tagged r1..rk", RULES),
    # broker/budget.py: budgets counted in the broker
    M("selftaught/broker/budget.py", "if responses > self.budgets.responses_per_call:",
      "if responses > self.budgets.responses_per_call + 1:", "one response more than the cap", BUDGET),
    M("selftaught/broker/budget.py", "if self.lm_calls >= self.budgets.lm_calls:",
      "if self.lm_calls > self.budgets.lm_calls:", "one LM call more than the budget", BUDGET),
    M("selftaught/broker/budget.py", "if self.utility_calls >= self.budgets.utility_calls:",
      "if self.utility_calls > self.budgets.utility_calls:", "one utility call more than the budget", BUDGET),
    M("selftaught/broker/budget.py", "return self.lm_calls - 1", "return self.lm_calls",
      "LM call indices start at 1 (cache keys shift)", BUDGET),
    # tasks: the trusted scorers
    M("selftaught/tasks/common.py", "if value < 0.0 or value > 1.0:", "if value < 0.0:",
      "scores above 1 are not clipped", TASKS),
    M("selftaught/tasks/common.py", 'return Score(0.0, "raw score was NaN")', 'return Score(1.0, "raw score was NaN")',
      "NaN scores 1", TASKS),
    M("selftaught/tasks/common.py", 'return Score(0.0, f"invalid output: {exc}")',
      'return Score(0.5, f"invalid output: {exc}")', "invalid output scores 0.5", TASKS),
    M("selftaught/tasks/common.py", "return sum(scores) / len(scores) if scores else 0.0",
      "return max(scores) if scores else 0.0", "a call scores its best instance, not the mean", TASKS),
    M("selftaught/tasks/lpn.py", "zip(predictions, truth, strict=True)) / len(truth)",
      "zip(predictions, truth, strict=True)) / (len(truth) + 1)", "LPN accuracy off by one instance", TASKS),
    M("selftaught/tasks/lpn.py", "if any(failures):", "if all(failures):",
      "LPN reference: one failure no longer sinks the call", TASKS),
    M("selftaught/tasks/maxcut.py", 'if "invalid" in failures:\n            return 0.0',
      'if "invalid" in failures:\n            return REFERENCE_EPS', "max-cut reference: a rejected answer gets "
      "the floor", TASKS),
    M("selftaught/tasks/maxcut.py", "return cut_weight(adjacency, labels) / total if total",
      "return cut_weight(adjacency, labels) / (total + 1) if total", "max-cut normalised by the wrong total", TASKS),
    M("selftaught/tasks/three_sat.py", "return 1.0 if satisfies(formula, assignment) else 0.0", "return 1.0",
      "3-SAT scores any assignment 1", TASKS),
    M("selftaught/tasks/three_sat.py", "    return all(any(assignment[abs(lit)] == (lit > 0) for lit in clause) for",
      "    return all(any(assignment[abs(lit)] == (lit > 0) for lit in clause[:2]) for",
      "3-SAT ignores each clause's third literal", TASKS),
    M("selftaught/tasks/string_grid.py", "return 0.5 - abs(found - dist) / (6 * len(t))",
      "return 0.5 + abs(found - dist) / (6 * len(t))", "string grid rewards missing the distance", TASKS),
    M("selftaught/tasks/string_grid.py", "if found == dist:", "if found >= dist:",
      "string grid: overshooting the distance scores 1", TASKS),
    M("selftaught/tasks/qap.py", "return float((mean - qap_cost(F, D, P, assignment)) / (mean - ref))",
      "return float((qap_cost(F, D, P, assignment) - mean) / (mean - ref))", "QAP maximises the cost", TASKS),
    M("selftaught/tasks/plugin.py", "return bounded(float(result))", "return Score(float(result), '')",
      "task files' plain-number scores are not clipped", TASKS),
]


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    verdict: str  # killed, survived, timeout, stale
    detail: str  # the first failing test, or why
    seconds: float


def _pytest(tree: Path, tests: tuple[str, ...], timeout_s: float) -> tuple[int | None, str]:
    """Run ``tests`` on ``tree``: the exit status (None on a time-out) and the output."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stdout + done.stderr


def _first_failure(output: str) -> str:
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return found.group(1) if found else output.strip().splitlines()[-1] if output.strip() else "no output"


def check(mutation: Mutation, tree: Path, timeout_s: float) -> Outcome:
    path = tree / mutation.path
    original = path.read_text()
    if original.count(mutation.old) != 1:
        return Outcome(mutation, "stale", f"found {original.count(mutation.old)} times, not once", 0.0)
    path.write_text(original.replace(mutation.old, mutation.new))
    started = time.monotonic()
    try:
        status, output = _pytest(tree, mutation.tests, timeout_s)
    finally:
        path.write_text(original)
    seconds = time.monotonic() - started
    if status is None:
        return Outcome(mutation, "timeout", f"no verdict in {timeout_s:.0f} s (counted as killed)", seconds)
    if status == 0:
        return Outcome(mutation, "survived", "every test passed", seconds)
    if status == 1:
        return Outcome(mutation, "killed", _first_failure(output), seconds)
    return Outcome(mutation, "killed", f"pytest exit {status}: {_first_failure(output)}", seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="match", default="", help="only mutations whose file or description contains this")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutation (default 120)")
    parser.add_argument("--tests", nargs="+", help="run these tests instead of each mutation's own")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.match in m.path or args.match in m.what]
    if args.tests:
        chosen = [replace(m, tests=tuple(args.tests)) for m in chosen]
    if args.list:
        for m in chosen:
            print(f"{m.path}: {m.what}")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutation-check-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(REPO, tree, ignore=IGNORE)
        for tests in sorted({m.tests for m in chosen}):
            status, output = _pytest(tree, tests, args.timeout * 2)
            if status != 0:
                print(f"the unmutated tree fails {' '.join(tests)}: {_first_failure(output)}", file=sys.stderr)
                return 2
        outcomes = []
        for m in chosen:
            outcome = check(m, tree, args.timeout)
            outcomes.append(outcome)
            print(f"{outcome.verdict.upper():9} {outcome.seconds:5.1f}s  {m.path}: {m.what}  [{outcome.detail}]",
                  flush=True)
    killed = sum(o.verdict in ("killed", "timeout") for o in outcomes)
    scored = sum(o.verdict != "stale" for o in outcomes)
    print(f"\nmutation score: {killed}/{scored} killed" + (f" ({killed / scored:.0%})" if scored else ""))
    if any(o.verdict == "stale" for o in outcomes):
        return 2
    return 1 if killed < scored else 0


if __name__ == "__main__":
    sys.exit(main())
