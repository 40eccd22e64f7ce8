"""False adoption, power and cost of every acceptance rule, on the simulated broker.

Each rule runs ``RUNS`` independent STOP runs of ``ITERATIONS`` steps with ``REPEATS`` repeats per
estimate, through the real ``stop.run_loop``, against ``selftaught.experiments.simulate`` (LPN-like
run outcomes; see that module for the model) in four scenarios:

- null: every candidate is exactly as good as the seed (true test 0.627 throughout);
- better: the seed's candidates are truly better (0.858); candidates of those are as good as
  their parent, so a run's true test rises once, when it adopts;
- better, weakly paired: the same, with less luck shared by two improvers on the same tags;
- worse: the seed's candidates are truly worse (0.523).

Reported per rule: the share of null candidates adopted (false adoption), the largest distance of
the mean reported test curve from the truth (selection bias: it must stay near 0), the share of
truly better candidates adopted at step 1 (power), the mean test at the last step, and how many
val improver runs a step's decision took (cost; the test estimate adds ``REPEATS`` more).
Run: .venv/bin/python benchmarks/acceptance.py   (about a minute on 2 cores)
"""

from __future__ import annotations

import time
from typing import Any

from _common import machine, machine_line, write

from selftaught.config import RunConfig
from selftaught.experiments.simulate import RuleResult, Scenario, simulate

RUNS = 400
ITERATIONS = 4
REPEATS = 3
RULES = ("sequential", "paired", "best", "paper")
SCENARIOS = (
    Scenario("null", 0.25, 0.25),
    Scenario("better", 0.25, 0.80),
    Scenario("better, weakly paired", 0.25, 0.80, rho=0.3),
    Scenario("worse", 0.25, 0.0),
)


def _row(rule: str, found: dict[str, RuleResult], scenarios: tuple[Scenario, ...]) -> str:
    null, better, weak, worse = (found[s.name] for s in scenarios)
    return (f"| `{rule}` | {null.adopted:.1%} | {null.incumbent_test[0]:.3f} → {null.incumbent_test[-1]:.3f} | "
            f"{better.adopted_at_1:.0%} | {weak.adopted_at_1:.0%} | "
            f"{better.incumbent_test[0]:.3f} → {better.incumbent_test[-1]:.3f} | {worse.adopted:.1%} | "
            f"{worse.incumbent_test[-1]:.3f} | {null.val_runs_per_step:.1f} / {better.val_runs_per_step:.1f} |")


HEADER = ("| rule | null: adopted | null: test t=0 → 4 | better: adopted at t=1 | better, weakly paired: adopted "
          "at t=1 | better: test t=0 → 4 | worse: adopted | worse: test at t=4 | val runs per step (null / better) |\n"
          "|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    info = machine()
    started = time.monotonic()
    results: dict[str, dict[str, RuleResult]] = {}
    for rule in RULES:
        config = RunConfig(iterations=ITERATIONS, repeats=REPEATS, accept=rule)  # type: ignore[arg-type]
        results[rule] = {s.name: simulate(s, config, RUNS) for s in SCENARIOS}
    elapsed = time.monotonic() - started
    truth = {s.name: [round(s.true_test(s.seed_skill), 3), round(s.true_test(s.proposed_skill), 3)]
             for s in SCENARIOS}
    report: dict[str, Any] = {
        "machine": info, "runs": RUNS, "iterations": ITERATIONS, "repeats": REPEATS,
        "max_repeats": RunConfig().max_repeats, "elapsed_s": round(elapsed, 1),
        "true_test_seed_and_candidate": truth,
        "results": [r.to_json() for rule in RULES for r in results[rule].values()],
    }
    lines = [
        "# Acceptance rules: false adoption, selection bias, power and cost",
        "",
        machine_line(info),
        "",
        f"{RUNS} simulated STOP runs per rule and scenario, t = 0..{ITERATIONS}, {REPEATS} repeats per "
        f"estimate (`sequential`: up to {RunConfig().max_repeats} pairs), driven through `stop.run_loop` on "
        "`selftaught.experiments.simulate` (true test: seed 0.627, better 0.858, worse 0.523).",
        "",
        HEADER,
        *(_row(rule, results[rule], SCENARIOS) for rule in RULES),
        "",
        "Each point of a test curve is a mean over the runs (standard error about 0.007); the curves' "
        "t = 0 values are the same draws for every rule. Every rule's reported test tracks the truth, because "
        "val and test come from separate runs (for comparison, issue 11 measured the earlier loop, which reported test "
        "from the selecting runs, climbing 0.645 → 0.794 in a null experiment under `best`). The rules differ in what "
        "they adopt and what it costs: the test estimate adds "
        f"{REPEATS} runs per step to the val runs counted here.",
        "",
        f"Simulation time: {elapsed:.0f} s.",
    ]
    write("acceptance", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
