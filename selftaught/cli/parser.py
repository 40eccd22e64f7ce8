"""The argument parser of every ``selftaught`` command (flags only; no behaviour)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from selftaught import __version__

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"selftaught: error: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _amount(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the run store lives (./runs)")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _run_flags(parser: argparse.ArgumentParser, *, loop: bool, several_lms: bool = False) -> None:
    """The flags ``cli.runs.config_from`` reads; ``loop=False`` leaves out the loop's own
    (task, iterations, repeats, accept), which then default to the config's; ``several_lms`` lets
    ``--lm`` be given more than once (a list)."""
    if loop:
        parser.add_argument("--task", help="task spec (lpn, lpn:preset=hard, lpn:bits=24,noise=0.1) or a task file "
                                           "path (default: lpn)")
        parser.add_argument("--iterations", type=_count, help="self-improvement steps T (default: 2)")
        parser.add_argument("--repeats", type=_count, help="improver runs per meta-utility estimate (default: 3)")
    else:
        parser.set_defaults(task=None, iterations=None, repeats=None, accept=None, max_repeats=None)
    lm_help = "openai:MODEL | anthropic:MODEL | local[:PATH.gguf] | manual:DIR | replay:RUN_ID"
    if several_lms:
        parser.add_argument("--lm", action="append", help=lm_help + " (repeat it to compare models)")
    else:
        parser.add_argument("--lm", help=lm_help)
    parser.add_argument("--seed", type=int, help="run seed (default: 0)")
    if loop:
        parser.add_argument("--accept", choices=["sequential", "best", "paper", "paired"],
                            help="acceptance rule (default: sequential)")
        parser.add_argument("--max-repeats", type=_count,
                            help="most paired val repeats per step for --accept sequential (default: 12)")
    parser.add_argument("--config", type=Path, help="TOML file with any RunConfig fields; flags override it")
    parser.add_argument("--scoring", choices=["normalised", "reference"],
                        help="normalised scorers, or the paper's reference scales and floors (default: normalised)")
    parser.add_argument("--secret-file", help="split secret file (from `selftaught secret export`) to draw val/test "
                                              "with (default: the run store's own)")
    parser.add_argument("--lm-calls", type=_count, help="LM calls per improver run (default: 4)")
    parser.add_argument("--responses-per-call", type=_count, help="samples per LM call (default: 6)")
    parser.add_argument("--utility-calls", type=_count, help="utility calls per improver run (default: 25)")
    parser.add_argument("--improver-timeout", type=_amount, help="seconds per improver run (default: 900)")
    parser.add_argument("--max-completion-tokens", type=_count, help="completion tokens per sample (default: 4096)")
    parser.add_argument("--manual-timeout", type=_amount, metavar="SECONDS",
                        help="how long --lm manual:DIR waits for each answer (default: 43200, 12 hours)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the most LM calls, samples, tokens and dollars the budgets allow, then exit")
    parser.add_argument("--max-cost-usd", type=_amount, help="stop the run cleanly at this many dollars")
    parser.add_argument("--max-tokens", type=_count, help="stop the run cleanly at this many LM tokens in all")
    parser.add_argument("--max-lm-calls", type=_count, help="stop the run cleanly after this many LM requests")
    parser.add_argument("--workers", type=_count, help="sandbox worker processes (default: 2)")
    parser.add_argument("--strict-sandbox", action="store_true", help="refuse to run without full isolation")
    parser.add_argument("--executor", choices=["local", "ray"], help="where sandboxed jobs run (default: local)")
    parser.add_argument("--ray-address", help="Ray cluster address for --executor ray (default: start a local one)")
    _runs_dir(parser)
    _json(parser)


def _experiment_commands(commands: Any) -> None:
    improver_help = "seed | cot | greedy | random | FILE.py | RUN_ID (an improver of that STOP run, by --rule)"
    rule_help = ("how an improver is chosen from a STOP run: best_val (highest val meta-utility) | last "
                 "(default: best_val)")

    improve = commands.add_parser("improve", help="apply an improver once to a task's initial solution")
    improve.add_argument("--task", required=True, help="task spec (e.g. lpn:preset=hard) or path to a task file")
    improve.add_argument("--improver", default="seed", help=improver_help + " (default: seed)")
    improve.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    _run_flags(improve, loop=False)

    score = commands.add_parser("score", help="an improver's meta-utility over tasks, normalised per task")
    score.add_argument("--improver", default="seed", help=improver_help + " (default: seed)")
    score.add_argument("--tasks", required=True, help="task specs separated by ';' or ',' (e.g. lpn,parity or "
                                                      "lpn:preset=hard;parity)")
    score.add_argument("--repeats", type=_count, help="improver runs per task (default: 3)")
    score.add_argument("--split", choices=["val", "test"], default="test", help="split scored (default: test)")
    score.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    _run_flags(score, loop=False)

    transfer = commands.add_parser("transfer", help="the paper's Table 1: improvers applied unchanged to tasks")
    transfer.add_argument("--improvers", required=True,
                          help="comma-separated: " + improver_help.replace(" | ", ", "))
    transfer.add_argument("--tasks", required=True, help="task specs separated by ';' or ',' (as for score)")
    transfer.add_argument("--runs", type=_count, default=5, help="independent improver runs per cell (default: 5)")
    transfer.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    transfer.add_argument("--csv", type=Path, help="also write the table as CSV to this file")
    _run_flags(transfer, loop=False)

    baseline = commands.add_parser("baseline", help="a baseline improver (CoT, greedy, random sampling) on a task")
    baseline.add_argument("--kind", required=True, choices=["cot", "greedy", "random"])
    baseline.add_argument("--task", required=True, help="task spec or path to a task file")
    baseline.add_argument("--runs", type=_count, default=5, help="independent improver runs (default: 5)")
    baseline.add_argument("--match", metavar="IMPROVER",
                          help="random only: match the LM calls, samples and utility calls this improver spends "
                               "(seed | FILE.py | RUN_ID), measured over --runs runs; default: the full budgets")
    baseline.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    _run_flags(baseline, loop=False)

    experiment = commands.add_parser("experiment", help="N independent STOP runs, test meta-utility per step ± se")
    experiment.add_argument("--runs", type=_count, default=5, help="independent runs, seeds seed..seed+N-1 (5)")
    experiment.add_argument("--from-runs", metavar="RUN_ID,...",
                            help="aggregate these stored STOP runs instead of starting new ones")
    experiment.add_argument("--allow-mixed-instances", action="store_true",
                            help="with --from-runs: aggregate runs scored on different instances anyway")
    _run_flags(experiment, loop=True, several_lms=True)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="selftaught", description="The Self-Taught Optimizer: code that improves its improver.")
    parser.add_argument("--version", action="version", version=f"selftaught {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="start a STOP run")
    _run_flags(run, loop=True)

    resume = commands.add_parser("resume", help="continue a stopped, failed or killed run")
    resume.add_argument("run_id")
    resume.add_argument("--max-cost-usd", type=_amount, help="new run-level dollar cap (0 = none)")
    resume.add_argument("--max-tokens", type=_count, help="new run-level token cap (0 = none)")
    resume.add_argument("--max-lm-calls", type=_count, help="new run-level LM request cap (0 = none)")
    _runs_dir(resume)
    _json(resume)

    replay = commands.add_parser("replay", help="re-run a recorded run offline from its stored LM responses")
    replay.add_argument("run_id")
    replay.add_argument("--executor", choices=["local", "ray"], help="where sandboxed jobs run (default: as recorded)")
    replay.add_argument("--ray-address", help="Ray cluster address for --executor ray")
    _runs_dir(replay)
    _json(replay)

    answer = commands.add_parser("answer", help="list the requests a manual:DIR model waits for; answer one")
    answer.add_argument("directory", type=Path, metavar="DIR")
    answer.add_argument("request", nargs="?", metavar="ID",
                        help="open this request's next missing answer in $EDITOR (default: the oldest)")
    answer.add_argument("--list", action="store_true", help="only list the pending requests")

    runs = commands.add_parser("runs", help="list the runs in a run store")
    _runs_dir(runs)
    _json(runs)

    tasks = commands.add_parser("tasks", help="list installed tasks, their parameters and presets")
    _json(tasks)

    secret = commands.add_parser("secret", help="the run store's split secret: show its fingerprint, export, import")
    secret.add_argument("action", choices=["show", "export", "import"])
    secret.add_argument("file", nargs="?", type=Path, help="export: write here (mode 0600); import: read from here")
    _runs_dir(secret)
    _experiment_commands(commands)

    scan = commands.add_parser("scan", help="static safety scan of a run's programs or of Python files")
    scan.add_argument("targets", nargs="+", metavar="RUN_ID|FILE")
    _runs_dir(scan)
    _json(scan)

    safety = commands.add_parser("safety", help="safety rates with Wilson 95%% intervals over runs")
    safety.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    safety.add_argument("--gap", type=_amount, default=0.10, help="flag adopted improvers with val - test above this")
    _runs_dir(safety)
    _json(safety)

    circ = commands.add_parser("circumvention", help="the paper's sandbox-circumvention experiment")
    circ.add_argument("--lm", help="model spec (default: from env)")
    circ.add_argument("-n", "--samples", type=_count, default=60, help="improvement samples per condition (60)")
    circ.add_argument("--batch", type=_count, default=6, help="samples per LM request (6)")
    circ.add_argument("--max-completion-tokens", type=_count, default=1024)
    _json(circ)

    report = commands.add_parser("report", help="plots and one HTML page for runs")
    report.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    report.add_argument("--out", type=Path, default=Path("report"), help="output directory (./report)")
    _runs_dir(report)

    dashboard = commands.add_parser("dashboard", help="read-only web view of a run store")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=_count, default=8765)
    dashboard.add_argument("--allow-remote", action="store_true", help="allow serving on a non-loopback address")
    _runs_dir(dashboard)
    return parser
