"""Per-evaluation overhead of the sandbox, and its throughput with two workers.

Methods, interleaved in one loop so that load on this shared machine hits each equally:
  in-process  exec the candidate and call it in this process (no isolation; the floor)
  cold        ``python -c`` subprocess per evaluation (no warm state; what naive harnesses do)
  sandbox     ForkServerSandbox with every layer this host offers (bubblewrap included)
  sandbox-l0  ForkServerSandbox with bubblewrap disabled
for a trivial candidate and one that uses numpy. Overhead = method median - in-process median.
Throughput: numpy-using evaluations per second through a 2-worker sandbox, 8 caller threads.
Writes benchmarks/results/sandbox_overhead.json and .md. Run: .venv/bin/python benchmarks/sandbox_overhead.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selftaught.config import SandboxConfig
from selftaught.records import Job
from selftaught.sandbox import ForkServerSandbox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine as common_machine  # noqa: E402

CANDIDATES = {
    "trivial": "def f():\n    return sum(range(10))\n",
    "numpy": "import numpy as np\ndef f():\n    return float(np.arange(10).sum())\n",
}
WARM_REPS = 150
COLD_REPS = 25
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {**common_machine(), "load_average_at_start": os.getloadavg()}


def in_process(source: str) -> Callable[[], Any]:
    def run() -> Any:
        namespace: dict[str, Any] = {}
        exec(compile(source, "<candidate>", "exec"), namespace)
        return namespace["f"]()

    return run


def cold(source: str) -> Callable[[], Any]:
    code = source + "print(f())\n"

    def run() -> Any:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                              env={"OPENBLAS_NUM_THREADS": "1"}).stdout

    return run


def sandboxed(box: ForkServerSandbox, source: str) -> Callable[[], Any]:
    job = Job(source=source, entry="f", calls=((),), call_timeout_s=10)

    def run() -> Any:
        outcome = box.run(job)
        assert outcome.ok, outcome.reason
        return outcome.results[0].value

    return run


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"median_ms": statistics.median(ordered) * 1000, "p10_ms": pick(0.1), "p90_ms": pick(0.9),
            "n": len(ordered)}


def interleaved(methods: dict[str, Callable[[], Any]], cold_methods: set[str]) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {name: [] for name in methods}
    for method in methods.values():
        method()  # warm-up
    for rep in range(WARM_REPS):
        for name, method in methods.items():
            if name in cold_methods and rep % (WARM_REPS // COLD_REPS) != 0:
                continue
            started = time.perf_counter()
            method()
            times[name].append(time.perf_counter() - started)
    return {name: summary(values) for name, values in times.items()}


def throughput(box: ForkServerSandbox, seconds: float = 4.0, threads: int = 8) -> dict[str, float]:
    job = Job(source=CANDIDATES["numpy"], entry="f", calls=((),), call_timeout_s=10)
    count = [0] * threads
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            assert box.run(job).ok
            count[i] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    return {"evaluations": sum(count), "seconds": elapsed, "per_second": sum(count) / elapsed,
            "threads": threads, "workers": 2}


def main() -> None:
    config = SandboxConfig(workers=2)
    full = ForkServerSandbox(config)
    plain = ForkServerSandbox(config, bubblewrap=False)
    report: dict[str, Any] = {"machine": machine(), "layers": {"sandbox": full.layers, "sandbox-l0": plain.layers},
                              "candidates": {}}
    try:
        for name, source in CANDIDATES.items():
            methods = {"in-process": in_process(source), "cold": cold(source),
                       "sandbox": sandboxed(full, source), "sandbox-l0": sandboxed(plain, source)}
            stats = interleaved(methods, cold_methods={"cold"})
            floor = stats["in-process"]["median_ms"]
            for method in ("cold", "sandbox", "sandbox-l0"):
                stats[method]["overhead_ms"] = stats[method]["median_ms"] - floor
            report["candidates"][name] = stats
        report["throughput_numpy_2_workers"] = throughput(full)
    finally:
        full.close()
        plain.close()
    report["machine"]["load_average_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandbox_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "sandbox_overhead.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Sandbox overhead per evaluation",
        "",
        f"Machine: {m['cores']} cores, {m['cpu']}, kernel {m['kernel']}, Python {m['python']}; "
        f"load average {m['load_average_at_start'][0]:.2f} at start, {m['load_average_at_end'][0]:.2f} at end "
        "(the machine is shared: quote ratios and ranges, not the last digit).",
        "",
        f"Full sandbox layers: {', '.join(report['layers']['sandbox'])}.",
        "",
        "| candidate | method | median ms | p10-p90 ms | overhead vs in-process ms | n |",
        "|---|---|---|---|---|---|",
    ]
    for candidate, stats in report["candidates"].items():
        for method, s in stats.items():
            overhead = f"{s['overhead_ms']:.2f}" if "overhead_ms" in s else "-"
            lines.append(f"| {candidate} | {method} | {s['median_ms']:.2f} | {s['p10_ms']:.2f}-{s['p90_ms']:.2f} "
                         f"| {overhead} | {s['n']} |")
    t = report["throughput_numpy_2_workers"]
    lines += ["", f"Throughput, numpy candidate, 2 workers, {t['threads']} caller threads: "
              f"**{t['per_second']:.0f} evaluations/s** ({t['evaluations']} in {t['seconds']:.1f} s).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
