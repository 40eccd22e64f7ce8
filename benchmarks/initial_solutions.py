"""u(s) of every task's initial solution through the real sandbox, with its time per instance.

For each built-in task and preset, the initial solution runs as the broker runs it (one sandboxed
job per split, the task's per-instance time limit, ``random``/``numpy.random`` seeded) on the
``val`` split drawn under a fixed secret. Reported: the score, how many instances failed or timed
out, and the slowest instance's wall time against the limit. On the ``paper`` preset the initial
solutions are meant to end well inside their limits, so u(s) measures the solution, not the machine;
the ``hard`` presets are allowed to run out of time (that is part of what makes them hard).
Run: .venv/bin/python benchmarks/initial_solutions.py   (a few minutes; QAP instances take longest)
"""

from __future__ import annotations

from typing import Any

from _common import machine, machine_line, write

from selftaught.config import SandboxConfig
from selftaught.records import Job
from selftaught.sandbox import ForkServerSandbox
from selftaught.tasks import get_task, list_tasks
from selftaught.tasks.secret import SplitSecret

SECRET = SplitSecret(bytes(range(32)))
BUILTINS = ("lpn", "parity", "string_grid", "qap", "three_sat", "maxcut")


def measure(sandbox: ForkServerSandbox, spec: str) -> dict[str, Any]:
    task = get_task(spec, SECRET)
    instances = list(task.instances("val"))
    job = Job(source=task.initial_solution, entry=task.entry, calls=tuple(i.args for i in instances),
              call_timeout_s=task.call_timeout_s, array_args=task.array_args, seed=0)
    outcome = sandbox.run(job)
    # The same job with a solution that does nothing: does the job even load within the first call's limit?
    noop = sandbox.run(Job(source=f"def {task.entry}(*args):\n    return None\n", entry=task.entry,
                           calls=job.calls, call_timeout_s=job.call_timeout_s, array_args=job.array_args))
    scores, slowest = [], 0.0
    for index, instance in enumerate(instances):
        result = outcome.results[index] if index < len(outcome.results) else None
        if result is None or not result.ok:
            scores.append(0.0)
            continue
        slowest = max(slowest, result.elapsed_s)
        scores.append(task.score(instance, result.value).value)
    return {"spec": spec, "limit_s": task.call_timeout_s, "u_s": sum(scores) / len(scores),
            "instances": len(instances), "finished": len(outcome.results),
            "failed": sum(1 for r in outcome.results if not r.ok), "timed_out": outcome.reason.startswith("timeout"),
            "slowest_s": slowest, "noop_finished": len(noop.results)}


def main() -> None:
    assert set(BUILTINS) <= set(list_tasks())
    info = machine()
    rows = []
    with ForkServerSandbox(SandboxConfig(workers=1)) as sandbox:
        for name in BUILTINS:
            for spec in (name, f"{name}:preset=hard"):
                rows.append(measure(sandbox, spec))
                print(rows[-1], flush=True)
    lines = ["# Initial solutions through the sandbox (val split, fixed secret)", "", machine_line(info), "",
             "| task and preset | u(s) | instances run | failed | timed out | slowest instance / limit "
             "| a no-op solution ran |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| `{row['spec']}` | {row['u_s']:.3f} | {row['finished']}/{row['instances']} | {row['failed']} "
                     f"| {'yes' if row['timed_out'] else 'no'} | {row['slowest_s']:.3f} s / {row['limit_s']:g} s "
                     f"| {row['noop_finished']}/{row['instances']} |")
    lines += ["", "A job sends every instance's arguments at once, and the worker must read them within the first "
              "call's limit: where even the no-op solution ran no instance, the job timed out while loading, "
              "not in the initial solution (the sandbox's time limits, not the task's code)."]
    write("initial_solutions", {"machine": info, "rows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
