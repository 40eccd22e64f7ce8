"""Acceptance rules measured on a simulated broker whose improvers have a known, true quality.

``SimulatedBroker`` is a real, in-process implementation of the protocol the loop and the
meta-utility use (``meta_utility.Runner``): no sandbox, no LM, microseconds per improver run. It
lets ``stop.run_loop`` itself be run thousands of times, to measure what no single run can show:
whether the reported test curve is unbiased (a null experiment, where every improver is the same,
must stay flat), how often each acceptance rule adopts a candidate that is no better (false
adoption), how often it adopts one that truly is (power), and how many val runs it spends.

The model (LPN-like run outcomes). An improver has a skill p: each of its downstream runs returns
a good solution (quality 0.97) with probability p, a broken one (0) with probability 0.05, else a
mediocre one (0.55). The run-level draw is shared by the val and the test score of that run's
solution (this shared luck is what biased the old loop's test curve); each split then adds its
own instance noise (binomial-sized: 20 val, 50 test instances, like LPN). Two improvers run on
the same tag share part of their luck (correlation ``rho`` of the underlying normal draws), as
the real broker's common random numbers do; the default 0.8 gives paired differences between the
better and the seed improver with a standard deviation of 0.29 per pair, a little noisier than the
0.19-0.24 issue 11 measured with a scripted model on LPN, so the power shown is not flattered.
The seed improver has skill ``Scenario.seed_skill``; a candidate the seed proposes has
``Scenario.proposed_skill``; a candidate any other improver proposes is exactly as good as its
parent. Everything is a deterministic function of the run
seed and the tags, so thread timing changes nothing.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

from selftaught.broker import Evaluation, ImproverRun, Utility
from selftaught.config import Budgets, RunConfig
from selftaught.experiments.experiment import StoredRun, aggregate
from selftaught.meta_utility import TaskUtility
from selftaught.records import Instance, Iteration, LMRequest, LMResponse, Score, Split
from selftaught.stop import run_loop
from selftaught.tasks.base import Task

__all__ = ["InlineExecutor", "MemoryRecorder", "RuleResult", "Scenario", "SimulatedBroker", "SimulatedTask",
           "simulate"]

GOOD, MEDIOCRE, BROKEN = 0.97, 0.55, 0.0
FAIL_P = 0.05
INSTANCES: dict[str, int] = {"train": 20, "val": 20, "test": 50}
_SKILL = re.compile(r"# simulated skill ([0-9.]+)\n")
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Scenario:
    """The truth of a simulated experiment: the seed's skill and the skill of the candidates it proposes."""

    name: str
    seed_skill: float
    proposed_skill: float
    rho: float = 0.8  # correlation of the normal draws behind two improvers' runs on the same tag

    def __post_init__(self) -> None:
        for skill in (self.seed_skill, self.proposed_skill):
            if not 0.0 <= skill <= 1.0 - FAIL_P:
                raise ValueError(f"a skill is a probability in [0, {1.0 - FAIL_P}], not {skill}")
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], not {self.rho}")

    def true_test(self, skill: float) -> float:
        """The expected test score of one run of an improver with ``skill``."""
        return skill * GOOD + (1.0 - FAIL_P - skill) * MEDIOCRE + FAIL_P * BROKEN


class InlineExecutor(Executor):
    """An ``Executor`` that runs each call at once in the caller's thread (no thread start-up per run)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever reads the result, as a thread pool would
            future.set_exception(exc)
        return future


@dataclass
class MemoryRecorder:
    """A ``records.Recorder`` that keeps programs and steps in memory (and counts the rest); thread-safe."""

    programs: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    steps: list[Iteration] = field(default_factory=list)
    evaluations: list[tuple[str, str]] = field(default_factory=list)  # (tag, split) of each evaluation
    events: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def program(self, kind: str, source: str, parent_id: int | None = None) -> int:
        with self._lock:
            if source not in self.programs:
                self.sources.append(source)
                self.programs[source] = len(self.sources)
            return self.programs[source]

    def evaluation(self, program_id: int, tag: str, task: str, split: str, score: float, instances: int,
                   failed: int, reason: str, elapsed_s: float) -> None:
        with self._lock:
            self.evaluations.append((tag, split))

    def lm_call(self, request: LMRequest, response: LMResponse) -> None:
        pass

    def event(self, kind: str, detail: str, program_id: int | None = None) -> None:
        with self._lock:
            self.events += 1

    def iteration(self, row: Iteration) -> None:
        with self._lock:
            self.steps.append(row)

    def source(self, program_id: int) -> str:
        return self.sources[program_id - 1]


@dataclass
class SimulatedTask:
    """A ``tasks.Task`` whose solutions are only ever scored by ``SimulatedBroker``."""

    name: str = "simulated"
    entry: str = "algorithm"
    description: str = "a simulated task: solutions are scored by the simulated broker"
    initial_solution: str = "def algorithm(x):\n    return 0\n"
    call_timeout_s: float = 1.0
    array_args: frozenset[int] = frozenset()

    def instances(self, split: Split) -> Sequence[Instance]:
        return tuple(Instance((i,)) for i in range(INSTANCES[split]))

    def score(self, instance: Instance, output: Any) -> Score:
        return Score(0.0, "simulated solutions are scored by the simulated broker")


class SimulatedBroker:
    """Runs improvers and scores solutions by the model of the module docstring (see ``Scenario``)."""

    def __init__(self, scenario: Scenario, seed: int, budgets: Budgets | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.budgets = budgets or Budgets()
        self.recorder = MemoryRecorder()
        self.runs: dict[str, int] = {}  # improver runs by kind: improve, val, test, train
        self._lock = threading.Lock()

    def improve(self, improver: str, initial_solution: str, utility: Utility, tag: str) -> ImproverRun:
        self.recorder.program("improver", improver)
        skill = self.skill(improver)
        if not isinstance(utility, TaskUtility):  # improving an improver: propose a candidate
            self._count("improve")
            child = self.scenario.proposed_skill if _SKILL.match(improver) is None else skill
            return ImproverRun(f"# simulated skill {child}\n# proposed at {tag} of seed {self.seed}\n", "", 1, 0)
        self._count(next((kind for kind in ("val", "test") if f"/eval/{kind}/" in tag), "train"))
        shared = self._normal(tag)
        own = self._normal(f"{tag}|{improver}")
        rho = self.scenario.rho
        u = _NORMAL.cdf(rho * shared + math.sqrt(1.0 - rho * rho) * own)
        quality = GOOD if u < skill else BROKEN if u > 1.0 - FAIL_P else MEDIOCRE
        return ImproverRun(f"# quality {quality}\n# {tag} by {_digest(improver)}\n", "", 1, 1)

    def evaluate(self, solution: object, task: Task, split: Split, tag: str) -> Evaluation:
        text = str(solution)
        quality = float(text.split("\n", 1)[0].removeprefix("# quality ") or 0.0)
        n = INSTANCES[split]
        noise = self._normal(f"{text}|{split}") * math.sqrt(quality * (1.0 - quality) / n)
        score = min(max(quality + noise, 0.0), 1.0)
        program_id = self.recorder.program("solution", text)
        self.recorder.evaluation(program_id, tag, task.name, split, score, n, 0, "", 0.0)
        return Evaluation(score, n, 0, "", program_id)

    def skill(self, improver: str) -> float:
        """The true skill of ``improver`` (the seed's for any source without a skill line)."""
        found = _SKILL.match(improver)
        return float(found.group(1)) if found else self.scenario.seed_skill

    def _normal(self, key: str) -> float:
        digest = hashlib.blake2b(f"{self.seed}|{key}".encode(), digest_size=8).digest()
        return _NORMAL.inv_cdf((int.from_bytes(digest, "big") + 0.5) / 2**64)

    def _count(self, kind: str) -> None:
        with self._lock:
            self.runs[kind] = self.runs.get(kind, 0) + 1


@dataclass(frozen=True)
class RuleResult:
    """One rule in one scenario over many simulated runs."""

    rule: str
    scenario: str
    runs: int
    incumbent_test: tuple[float, ...]  # mean reported test of the incumbent after each step t
    true_test: tuple[float, ...]  # mean true test meta-utility of the incumbent after each step t
    adopted_at_1: float  # share of runs that adopted their step-1 candidate
    adopted: float  # share of all candidates (t >= 1) adopted
    val_runs_per_step: float  # val improver runs per step t >= 1 (candidate and incumbent)
    gains: tuple[float, ...]  # per run, last incumbent test minus the seed's (``experiment``'s gains)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "scenario": self.scenario, "runs": self.runs,
                "incumbent_test": list(self.incumbent_test), "true_test": list(self.true_test),
                "adopted_at_1": self.adopted_at_1, "adopted": self.adopted, "val_runs_per_step": self.val_runs_per_step,
                "mean_gain": sum(self.gains) / max(1, len(self.gains)),
                "gained_3pct": sum(1 for gain in self.gains if gain >= 0.03) / max(1, len(self.gains))}


def simulate(scenario: Scenario, config: RunConfig, runs: int, first_seed: int = 0) -> RuleResult:
    """``runs`` independent STOP runs (seeds ``first_seed``...) of ``config`` on the simulated broker."""
    stored, true, val_runs = [], [], 0
    for seed in range(first_seed, first_seed + runs):
        broker = SimulatedBroker(scenario, seed, config.budgets)
        rows = run_loop(broker, SimulatedTask(), replace(config, seed=seed), broker.recorder, executor=InlineExecutor())
        stored.append(StoredRun(str(seed), tuple(rows)))
        sources = broker.recorder.sources
        true.append([scenario.true_test(broker.skill(sources[row.incumbent_id - 1])) for row in rows])
        val_runs += broker.runs.get("val", 0) - config.repeats  # step 0's val runs are not a decision
    table = aggregate(stored)
    steps = [row for run in stored for row in run.iterations if row.t >= 1 and row.candidate_id is not None]
    first = [row for row in steps if row.t == 1]
    return RuleResult(
        config.accept, scenario.name, runs,
        tuple(step.incumbent.mean if step.incumbent else math.nan for step in table.steps),
        tuple(sum(curve[t] for curve in true) / len(true) for t in range(config.iterations + 1)),
        sum(row.accepted for row in first) / max(1, len(first)),
        sum(row.accepted for row in steps) / max(1, len(steps)),
        val_runs / max(1, runs * config.iterations),
        table.gains,
    )


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
