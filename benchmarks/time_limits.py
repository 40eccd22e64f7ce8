"""What per-instance time limits cost: restarting after a killed instance vs forking per instance.

A call that has to be killed (past its wall-clock limit, or its process died) fails alone and the
job goes on in a fresh process with the instances after it. The alternative design forks a child
per instance, so no restart is ever needed, but every instance pays for a fork. Measured on
Max-Cut's test split (50 graphs, 1.8 MB of JSON), interleaved so load hits each variant equally:
  honest      a constant-work solution (alternating labels), one process
  restart     the same solution, but its process dies on the first graph: one restart, 49 graphs
              sent and decoded again (the cost a killed instance adds, beyond its own time)
  fork-each   the same solution forking and reaping a child on every graph (a lower bound on
              what a fork per instance would add to every job, killed instance or not)
Also the honest solution's mean score idle and beside two CPU-bound processes (they must match).
Writes benchmarks/results/time_limits.json and .md. Run: .venv/bin/python benchmarks/time_limits.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from selftaught.config import SandboxConfig
from selftaught.records import Job
from selftaught.sandbox import ForkServerSandbox
from selftaught.tasks import get_task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine as common_machine  # noqa: E402
from _common import machine_line, write  # noqa: E402

REPS = 9
HONEST = "def algorithm(adjacency):\n    return [i % 2 for i in range(len(adjacency))]\n"
VARIANTS = {
    "honest": HONEST,
    "restart": "import os\n" + HONEST.replace(
        "    return", "    if int(adjacency.sum()) == FIRST_SUM:\n        os._exit(0)\n    return"),
    "fork-each": "import os\n" + HONEST.replace(
        "    return", "    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n    os.waitpid(pid, 0)\n    return"),
}


def _job(source: str) -> Job:
    task = get_task("maxcut")
    first_sum = 2 * task.instances("test")[0].answer["total_weight"]  # identifies the first graph
    source = source.replace("FIRST_SUM", str(first_sum))
    return Job(source, task.entry, tuple(i.args for i in task.instances("test")), task.call_timeout_s,
               array_args=task.array_args)


def _mean_score(outcome: Any) -> float:
    task = get_task("maxcut")
    scores = [task.score(instance, result.value).value if result.ok else 0.0
              for instance, result in zip(task.instances("test"), outcome.results, strict=True)]
    return sum(scores) / len(scores)


def main() -> int:
    info = common_machine()
    jobs = {name: _job(source) for name, source in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in jobs}
    with ForkServerSandbox(SandboxConfig(workers=1)) as sandbox:
        sandbox.run(jobs["honest"])  # warm up
        for _ in range(REPS):
            for name, job in jobs.items():
                started = time.perf_counter()
                outcome = sandbox.run(job)
                times[name].append(time.perf_counter() - started)
                assert len(outcome.results) == 50 and outcome.restarts == (name == "restart"), outcome.reason
        idle = _mean_score(sandbox.run(jobs["honest"]))
        hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(2)]
        try:
            time.sleep(0.5)
            loaded_started = time.perf_counter()
            loaded = _mean_score(sandbox.run(jobs["honest"]))
            loaded_s = time.perf_counter() - loaded_started
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    medians = {name: statistics.median(values) for name, values in times.items()}
    result: dict[str, Any] = {
        "machine": info,
        "reps": REPS,
        "median_s": medians,
        "restart_cost_s": medians["restart"] - medians["honest"],
        "fork_cost_per_instance_s": (medians["fork-each"] - medians["honest"]) / 50,
        "score_idle": idle,
        "score_beside_two_cpu_hogs": loaded,
        "seconds_beside_two_cpu_hogs": loaded_s,
    }
    lines = [
        "# Per-instance time limits: restart after a killed instance, or fork per instance?",
        "",
        machine_line(info),
        "",
        f"Max-Cut test split (50 graphs, 1.8 MB of JSON), one worker, median of {REPS} interleaved runs.",
        "",
        "| variant | median job wall time |",
        "|---|---|",
        *(f"| {name} | {value * 1000:.0f} ms |" for name, value in medians.items()),
        "",
        f"- One restart (a fresh process, 49 graphs sent and decoded again) costs "
        f"{result['restart_cost_s'] * 1000:.0f} ms, paid only when an instance had to be killed.",
        f"- A fork per instance costs at least {result['fork_cost_per_instance_s'] * 1000:.2f} ms per graph, "
        f"{result['fork_cost_per_instance_s'] * 50 * 1000:.0f} ms per job, paid by every job.",
        f"- The constant-work solution scores {idle:.4f} idle and {loaded:.4f} beside two CPU-bound processes.",
        "",
    ]
    write("time_limits", result, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
