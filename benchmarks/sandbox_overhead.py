"""What one candidate evaluation costs in selftaught's sandbox, side by side with the ways peers
evaluate candidates, and the sandbox's throughput with 1 and 2 workers.

Methods (``_eval_methods.DESCRIPTIONS``): selftaught's full sandbox, the same without bubblewrap,
the same without a cgroup per job (``sandbox.job_cgroups = false``), the unisolated peers'
pattern (write the candidate to a file and import it in-process) as the paper's code has it (the
reference every ratio is taken to), the same with the ``__init__.py`` the paper's code lacks,
OpenEvolve's evaluator path, a bare compile-exec-call in-process, the floor of one fresh process
per candidate (``prefork``: a child forked and warmed up ahead of time runs the candidate, with no
isolation at all), a fresh ``python evaluate.py`` per candidate (ShinkaEvolve-style) and a cold
``python -c``; each with a trivial candidate and one that imports numpy.

How: each method lives in its own long-lived agent process (``--agent METHOD``), started and
warmed up before the clock starts (its first calls are reported apart: they show in-process
imports). Every round sends each (method, candidate) pair ``--reps`` evaluations (one for the two
methods that start an interpreter per candidate), in a freshly shuffled order, so the machine's
load hits every method alike; one sample times one evaluation inside the agent. Reported per
method and candidate: median, p10-p90, the ratio of its median to the reference's median, and the
p10-p90 of the same ratio taken round by round. Then paced: the sandbox and the reference
alternately, one evaluation after each 1 ms, 5 ms and 50 ms of idle time, since on a VM every method
slows down the longer the machine was idle before it. Then throughput: numpy-candidate evaluations per
second through a full sandbox with 1 and with 2 workers (4 caller threads per worker), the two
alternating for ``--passes`` passes; the median pass is reported.

Targets (issue 17): full sandbox median <= 1.5x the write-and-import pattern for both candidates;
>= 450 numpy evaluations/s with 2 workers on 2 cores. The result says whether each was met.

Run: .venv/bin/python benchmarks/sandbox_overhead.py            (1-2 minutes on 2 shared cores)
     .venv/bin/python benchmarks/sandbox_overhead.py --quick    (about half a minute)
     options: --rounds N --reps N --passes N --seconds S --seed N
     --busy N   N CPU-bound processes spin beside the whole run (a shared machine); the result
                goes to sandbox_overhead_busyN.md and .json instead
Writes benchmarks/results/sandbox_overhead.md and .json (raw samples included), with the machine's
load before and after, the git commit and this command.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's selftaught, also in the agents
    sys.path.insert(0, str(ROOT))

from _eval_methods import CANDIDATES, DESCRIPTIONS, SPAWNING, UNSET, agent, agent_env  # noqa: E402

METHODS = ("sandbox", "sandbox-no-bwrap", "sandbox-no-cgroups", "write-import", "write-import-package",
           "evaluator-import", "exec-call", "prefork", "subprocess", "cold")
REFERENCE = "write-import"
FLOOR = "prefork"
OTHERS = ("evaluator-import", "write-import-package", FLOOR)  # the sandbox's ratio to these is reported too
TARGET_RATIO = 1.5
TARGET_PER_SECOND = 450.0
WORKERS = (1, 2)
THREADS_PER_WORKER = 4
PACED = ("sandbox", REFERENCE)
PACED_GAPS_S = (0.001, 0.005, 0.05)


class Agent:
    """One method's long-lived process, spoken to a line at a time."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.process = subprocess.Popen([sys.executable, __file__, "--agent", method], cwd=ROOT, text=True,
                                        bufsize=1, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=agent_env())

    def ask(self, line: str | None = None, timeout_s: float = 300.0) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if line is not None:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        if not select.select([self.process.stdout], [], [], timeout_s)[0]:
            raise RuntimeError(f"agent {self.method} gave no answer in {timeout_s:.0f} s")
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"agent {self.method} exited (rc {self.process.wait()}); its stderr is above")
        reply: dict[str, Any] = json.loads(answer)
        return reply

    def close(self) -> None:
        try:
            if self.process.poll() is None and self.process.stdin is not None:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: list[float], scale: float = 1.0) -> dict[str, float]:
    return {"median": quantile(values, 0.5) * scale, "p10": quantile(values, 0.1) * scale,
            "p90": quantile(values, 0.9) * scale, "n": len(values)}


def interleave(agents: dict[str, Agent], rounds: int, reps: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[list[float]]]] = {m: {c: [] for c in CANDIDATES} for m in agents}
    after: dict[str, dict[str, list[float]]] = {m: {} for m in agents}  # seconds, by the method just before
    started = time.monotonic()
    previous = "start"
    for round_ in range(rounds):
        order = [(m, c) for m in agents for c in CANDIDATES for _ in range(1 if m in SPAWNING else reps)]
        rng.shuffle(order)
        for method in samples:
            for candidate in CANDIDATES:
                samples[method][candidate].append([])
        for method, candidate in order:
            answer = agents[method].ask(candidate)
            if not answer["ok"]:
                raise RuntimeError(f"{method} returned a wrong value for the {candidate} candidate")
            samples[method][candidate][-1].append(answer["s"])
            after[method].setdefault(previous, []).append(answer["s"])
            previous = method
        if round_ % 10 == 9:
            print(f"round {round_ + 1}/{rounds}, {time.monotonic() - started:.0f} s", flush=True)
    return {"samples_s_by_round": samples, "samples_s_by_previous": after, "seconds": time.monotonic() - started}


def paced(agents: dict[str, Agent], per_gap: int) -> dict[str, Any]:
    """The sandbox and the peers' pattern alternately, one evaluation per ``gap`` of idle time:
    with a short gap the machine's caches are still warm (and the sandbox's spares have warmed
    up); with a long one both start cold, as most evaluations of the interleaved rounds do."""
    found: dict[str, Any] = {}
    for gap in PACED_GAPS_S:
        samples: dict[str, dict[str, list[float]]] = {m: {c: [] for c in CANDIDATES} for m in PACED}
        for candidate in CANDIDATES:
            for _ in range(per_gap):
                for method in PACED:
                    time.sleep(gap)
                    samples[method][candidate].append(agents[method].ask(candidate)["s"])
        stats = {m: {c: spread(v, 1000) for c, v in by.items()} for m, by in samples.items()}
        for candidate in CANDIDATES:
            stats["sandbox"][candidate]["ratio"] = (stats["sandbox"][candidate]["median"]
                                                    / stats[REFERENCE][candidate]["median"])
        found[f"{gap * 1000:g}"] = stats
    return found


def summarize(samples: dict[str, dict[str, list[list[float]]]]) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}
    for method, by_candidate in samples.items():
        stats[method] = {}
        for candidate, by_round in by_candidate.items():
            flat = [s for round_ in by_round for s in round_]
            ms = spread(flat, 1000)
            reference = [s for round_ in samples[REFERENCE][candidate] for s in round_]
            ms["ratio"] = quantile(flat, 0.5) / quantile(reference, 0.5)
            per_round = [quantile(mine, 0.5) / quantile(ref, 0.5)
                         for mine, ref in zip(by_round, samples[REFERENCE][candidate], strict=True)]
            ms["ratio_by_round_p10"] = quantile(per_round, 0.1)
            ms["ratio_by_round_p90"] = quantile(per_round, 0.9)
            stats[method][candidate] = ms
    return stats


def drift(samples: dict[str, dict[str, list[list[float]]]]) -> dict[str, dict[str, float]]:
    """Median ms of the first and of the last sixth of the rounds, per method and candidate:
    the peers' pattern leaves one file per candidate behind (as the paper's code does), and each
    import lists the folder again, so it slows down as the run goes on."""
    found: dict[str, dict[str, float]] = {}
    for method, by_candidate in samples.items():
        for candidate, by_round in by_candidate.items():
            part = max(1, len(by_round) // 6)
            first = [s for round_ in by_round[:part] for s in round_]
            last = [s for round_ in by_round[-part:] for s in round_]
            found.setdefault(method, {})[candidate] = quantile(first, 0.5) * 1000
            found[method][f"{candidate}_last"] = quantile(last, 0.5) * 1000
    return found


def throughput(passes: int, seconds: float) -> dict[str, Any]:
    agents = {w: Agent(f"throughput-{w}") for w in WORKERS}
    try:
        for a in agents.values():
            a.ask()
        runs: dict[int, list[dict[str, Any]]] = {w: [] for w in WORKERS}
        for _ in range(passes):
            for workers, a in agents.items():
                result = a.ask(f"throughput {seconds} {THREADS_PER_WORKER * workers}")
                if result["errors"]:
                    raise RuntimeError(f"throughput with {workers} workers: {result['errors']}")
                runs[workers].append(result)
    finally:
        for a in agents.values():
            a.close()
    return {str(w): {"per_second_median": quantile([r["per_second"] for r in rs], 0.5),
                     "per_second_passes": [round(r["per_second"], 1) for r in rs],
                     "threads": THREADS_PER_WORKER * w, "passes": rs} for w, rs in runs.items()}


def measure(report: dict[str, Any], args: argparse.Namespace, rounds: int, reps: int, passes: int,
            seconds: float) -> None:
    """The interleaved rounds, the paced samples and the throughput passes, into ``report``."""
    agents = {m: Agent(m) for m in METHODS}
    try:
        hello = {m: a.ask() for m, a in agents.items()}
        report["layers"] = {m: hello[m]["layers"] for m in METHODS if m.startswith("sandbox")}
        report["first_call_s"] = {m: hello[m]["first_call_s"] for m in METHODS}
        report["sys_path"] = hello[REFERENCE]["sys_path"]
        report["load_average"]["before_interleaved"] = list(os.getloadavg())
        timed = interleave(agents, rounds, reps, args.seed)
        report["paced_ms"] = paced(agents, 20 if args.quick else 60)
    finally:
        for a in agents.values():
            a.close()
    report["load_average"]["after_interleaved"] = list(os.getloadavg())
    report["interleaved_s"] = timed["seconds"]
    report["stats_ms"] = summarize(timed["samples_s_by_round"])
    report["drift_ms"] = drift(timed["samples_s_by_round"])
    report["samples_s_by_round"] = timed["samples_s_by_round"]
    report["after_ms"] = {m: {previous: spread(values, 1000) for previous, values in by.items()}
                          for m, by in timed["samples_s_by_previous"].items() if m in PACED}
    report["throughput_numpy"] = throughput(passes, seconds)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="25 rounds, 2 reps, 1 pass of 3 s (about half a minute)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 60)")
    parser.add_argument("--reps", type=int, help="evaluations per warm method and candidate per round (default 3)")
    parser.add_argument("--passes", type=int, help="throughput passes per worker count (default 3)")
    parser.add_argument("--seconds", type=float, help="seconds per throughput pass (default 4)")
    parser.add_argument("--seed", type=int, default=17, help="seed of the shuffled order")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="N CPU-bound processes spin beside the whole run (result: sandbox_overhead_busyN)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (25 if args.quick else 60)
    reps = args.reps or (2 if args.quick else 3)
    passes = args.passes or (1 if args.quick else 3)
    seconds = args.seconds or (3.0 if args.quick else 4.0)
    if min(rounds, reps, passes) < 1 or seconds <= 0:
        parser.error("--rounds, --reps, --passes and --seconds must be positive")
    if not 0 <= args.busy <= 64:
        parser.error("--busy must be between 0 and 64")

    from _common import machine, write

    info = machine()
    report: dict[str, Any] = {"machine": info, "rounds": rounds, "reps": reps, "seed": args.seed,
                              "environment_unset": {name: os.environ.get(name) for name in UNSET},
                              "reference": REFERENCE, "descriptions": DESCRIPTIONS, "busy": args.busy,
                              "load_average": {"start": list(os.getloadavg())}}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        measure(report, args, rounds, reps, passes, seconds)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    report["load_average"]["after_throughput"] = list(os.getloadavg())
    ratios = {c: report["stats_ms"]["sandbox"][c]["ratio"] for c in CANDIDATES}
    per_second = report["throughput_numpy"]["2"]["per_second_median"]
    report["sandbox_over"] = {m: {c: report["stats_ms"]["sandbox"][c]["median"] / report["stats_ms"][m][c]["median"]
                                  for c in CANDIDATES} for m in OTHERS}
    report["targets"] = {"ratio_max": TARGET_RATIO, "ratio": ratios,
                         "ratio_met": all(r <= TARGET_RATIO for r in ratios.values()),
                         "per_second_min": TARGET_PER_SECOND, "per_second_2_workers": per_second,
                         "per_second_met": per_second >= TARGET_PER_SECOND}
    write(f"sandbox_overhead_busy{args.busy}" if args.busy else "sandbox_overhead", report, markdown(report))


def fmt(ms: float) -> str:
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def markdown(r: dict[str, Any]) -> str:
    from _common import machine_line

    load = r["load_average"]
    t = r["targets"]
    unset = ", ".join(f"`{name}`" for name in r["environment_unset"])
    given = ", ".join(f"`{name}={value}`" if value is not None else f"no `{name}`"
                      for name, value in r["environment_unset"].items())
    lines = [
        "# One candidate evaluation: selftaught's sandbox side by side with the peers' ways",
        "",
        machine_line(r["machine"]),
        *([f"**{r['busy']} CPU-bound process(es) spun beside the whole run** (a shared machine)."]
          if r.get("busy") else []),
        f"Load average (1 min) at start {load['start'][0]:.2f}, before the timed rounds "
        f"{load['before_interleaved'][0]:.2f}, after them {load['after_interleaved'][0]:.2f}, after the "
        f"throughput passes {load['after_throughput'][0]:.2f}.",
        "",
        f"{r['rounds']} interleaved rounds, shuffled order each round; per round {r['reps']} evaluations per warm "
        f"method and candidate, 1 for `subprocess` and `cold`. Each method in its own long-lived process; one "
        f"sample times one evaluation inside it. Ratio: the method's median over `{r['reference']}`'s median "
        f"(the same ratio taken round by round: p10-p90 in brackets). Every method runs with Python's defaults "
        f"({unset} left out of its environment; the shell had {given}).",
        "",
        "| method | trivial median ms | p10-p90 | x write-import | numpy median ms | p10-p90 | x write-import "
        "| n per candidate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, stats in r["stats_ms"].items():
        cells = []
        for candidate in CANDIDATES:
            s = stats[candidate]
            cells += [f"{fmt(s['median'])}", f"{fmt(s['p10'])}-{fmt(s['p90'])}",
                      f"**{s['ratio']:.2f}x** ({s['ratio_by_round_p10']:.2f}-{s['ratio_by_round_p90']:.2f})"]
        lines.append(f"| `{method}` | " + " | ".join(cells) + f" | {stats['trivial']['n']} |")
    per_gap = next(iter(r["paced_ms"].values()))["sandbox"]["trivial"]["n"]
    lines += ["", f"Paced: `sandbox` and `{r['reference']}` alternately, one evaluation after each gap of idle time "
              f"({per_gap} per method, candidate and gap). Every method slows down the longer the machine was "
              "idle before it (cold caches on this VM). With 1 ms gaps the sandbox's own jobs come about 2.5 ms "
              "apart: each finds a spare that warmed up as soon as it was ready (spares wait 2 ms before warming "
              "up only while every CPU slot is in demand).",
              "", f"| gap | `sandbox` trivial median ms (p10-p90) | `{r['reference']}` | x | `sandbox` numpy "
              f"| `{r['reference']}` | x |", "|---|---|---|---|---|---|---|"]
    for gap, p in r["paced_ms"].items():
        cells = []
        for candidate in CANDIDATES:
            mine, ref = p["sandbox"][candidate], p[r["reference"]][candidate]
            cells += [f"{fmt(mine['median'])} ({fmt(mine['p10'])}-{fmt(mine['p90'])})",
                      f"{fmt(ref['median'])} ({fmt(ref['p10'])}-{fmt(ref['p90'])})", f"**{mine['ratio']:.2f}x**"]
        lines.append(f"| {gap} ms | " + " | ".join(cells) + " |")
    ref = r["reference"]
    d = r["drift_ms"]
    lines += ["", f"First and last sixth of the rounds (median ms, trivial / numpy): `{ref}` "
              f"{fmt(d[ref]['trivial'])} -> {fmt(d[ref]['trivial_last'])} / {fmt(d[ref]['numpy'])} -> "
              f"{fmt(d[ref]['numpy_last'])} (it leaves a file per candidate behind, as the paper's code does, and "
              f"lists the folder again at each import); `sandbox` {fmt(d['sandbox']['trivial'])} -> "
              f"{fmt(d['sandbox']['trivial_last'])} / {fmt(d['sandbox']['numpy'])} -> "
              f"{fmt(d['sandbox']['numpy_last'])}. So the ratios also depend on how many rounds ran."]
    lines += ["", f"The interleaved samples of `sandbox` and `{ref}` (both candidates) by the method that ran just "
              "before them: most evaluations meet caches that other processes have just used.", "",
              f"| method just before | `sandbox` median ms (n) | `{ref}` median ms (n) |", "|---|---|---|"]
    for previous in r["stats_ms"]:
        cells = [f"{fmt(a['median'])} ({a['n']})" if (a := r["after_ms"][m].get(previous)) else "-" for m in PACED]
        lines.append(f"| `{previous}` | " + " | ".join(cells) + " |")
    lines += ["", "What one sample covers:", ""]
    lines += [f"- `{m}`: {d}" for m, d in r["descriptions"].items()]
    first = r["first_call_s"]
    lines += [
        *([f"- `{r['reference']}`'s process has {r['sys_path']['folders']} `sys.path` folders holding "
           f"{r['sys_path']['entries']} entries, which each of its imports lists again (more installed packages: "
           "a slower pattern)."] if "sys_path" in r else []),
        "- First numpy-candidate call, untimed warm-up: "
        f"`write-import` {first['write-import']['numpy'] * 1000:.0f} ms, "
        f"`exec-call` {first['exec-call']['numpy'] * 1000:.0f} ms (the in-process numpy import, paid once per "
        f"process); `sandbox` {first['sandbox']['numpy'] * 1000:.1f} ms (its workers preload numpy).",
        f"- Full sandbox layers: {', '.join(r['layers']['sandbox'])}. Without bubblewrap: "
        f"{', '.join(r['layers']['sandbox-no-bwrap'])}.",
        "",
        "Throughput, numpy candidate, full sandbox (median of the passes; 1- and 2-worker passes alternate):",
        "",
        "| workers | caller threads | evaluations/s | passes |",
        "|---|---|---|---|",
    ]
    for workers, row in r["throughput_numpy"].items():
        lines.append(f"| {workers} | {row['threads']} | **{row['per_second_median']:.0f}** | "
                     f"{', '.join(f'{v:.0f}' for v in row['per_second_passes'])} |")
    lines += [
        "",
        f"Targets (issue 17): full sandbox median <= {t['ratio_max']}x `write-import` for both candidates: "
        f"trivial {t['ratio']['trivial']:.2f}x, numpy {t['ratio']['numpy']:.2f}x, **{met(t['ratio_met'])}**; "
        f">= {t['per_second_min']:.0f} numpy evaluations/s with 2 workers: {t['per_second_2_workers']:.0f}/s, "
        f"**{met(t['per_second_met'])}**. The same ratio against OpenEvolve's evaluator path "
        f"(`evaluator-import`): {r['sandbox_over']['evaluator-import']['trivial']:.2f}x / "
        f"{r['sandbox_over']['evaluator-import']['numpy']:.2f}x; against `write-import-package` (the paper's "
        f"pattern with the `__init__.py` it lacks, faster than either peer's code): "
        f"{r['sandbox_over']['write-import-package']['trivial']:.2f}x / "
        f"{r['sandbox_over']['write-import-package']['numpy']:.2f}x.",
        "",
        "The floor of any design that gives each candidate a fresh process (`prefork`: forked and warmed up "
        "ahead, no isolation, no limits, no protocol) is "
        f"{r['stats_ms'][FLOOR]['trivial']['ratio']:.2f}x / {r['stats_ms'][FLOOR]['numpy']['ratio']:.2f}x "
        "`write-import` (trivial / numpy); the full sandbox is "
        f"{r['sandbox_over'][FLOOR]['trivial']:.2f}x / {r['sandbox_over'][FLOOR]['numpy']:.2f}x that floor.",
        "",
        "Only the `sandbox` methods isolate the candidate (process, uid, rlimits, seccomp, namespaces); "
        "`prefork` gives it a fresh process and nothing else; `subprocess` and `cold` give it a fresh interpreter "
        "with the caller's uid, files and network; `write-import`, `write-import-package`, `evaluator-import` and "
        "`exec-call` run it inside the evaluating process.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--agent"]:
        agent(sys.argv[2])
    else:
        main(sys.argv[1:])
