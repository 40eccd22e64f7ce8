"""The argument parser of every ``selftaught`` command (flags only; no behaviour)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from selftaught import __version__

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """Errors as one line pointing at the help of the command that was given (``selftaught run --help``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"selftaught: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # argparse reports these from the top parser; point at the subcommand's help instead
            command = self.commands.get(str(getattr(parsed, "command", "") or ""))
            (command or self).error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def _command(commands: Any, registry: dict[str, argparse.ArgumentParser], name: str, summary: str,
             description: str) -> argparse.ArgumentParser:
    """A subcommand with a one-line ``summary`` (the command list) and a ``description`` (its --help)."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=description)
    registry[name] = parser
    return parser


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
    # SUPPRESS: given after the command it wins, else the value given before the command (or ./runs) stays
    parser.add_argument("--runs-dir", type=Path, default=argparse.SUPPRESS,
                        help="directory of the run store selftaught.db (default: ./runs)")


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
    lm_help = ("openai:MODEL | anthropic:MODEL | local (the best installed embedded model) | local:qwen2.5-coder-1.5b "
               "| local:smollm2-135m | local:PATH.gguf | manual:DIR | replay:RUN_ID (default: from the environment)")
    if several_lms:
        parser.add_argument("--lm", action="append", help=lm_help + "; repeat it to compare models")
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


def _experiment_commands(commands: Any, registry: dict[str, argparse.ArgumentParser]) -> None:
    improver_help = "seed | cot | greedy | random | FILE.py | RUN_ID (an improver of that STOP run, by --rule)"
    rule_help = ("how an improver is chosen from a STOP run: best_val (highest val meta-utility) | last "
                 "(default: best_val)")

    improve = _command(commands, registry, "improve", "apply an improver once to a task's initial solution",
                       "Run one improver once on a task's initial solution s (train utility, fresh budgets), then "
                       "score s and the returned solution on val and test. Prints u(s) beside the new scores, "
                       "explains failures on stderr and prints the new solution. Stored as a run of kind improve.")
    improve.add_argument("--task", required=True,
                         help="task spec (see selftaught tasks; e.g. lpn:preset=hard) or path to a task file")
    improve.add_argument("--improver", default="seed", help=improver_help + " (default: seed)")
    improve.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    _run_flags(improve, loop=False)

    score = _command(commands, registry, "score", "an improver's meta-utility over tasks, normalised per task",
                     "Run an improver --repeats times on each task and score what it returns on a split; per task "
                     "it shows u(s), the raw mean ± se and the normalised gain, then the mean normalised gain. "
                     "Stored as a run of kind score.")
    score.add_argument("--improver", default="seed", help=improver_help + " (default: seed)")
    score.add_argument("--tasks", required=True, help="task specs separated by ';' or ',' (e.g. lpn,parity or "
                                                      "lpn:preset=hard;parity)")
    score.add_argument("--repeats", type=_count, help="improver runs per task (default: 3)")
    score.add_argument("--split", choices=["val", "test"], default="test", help="split scored (default: test)")
    score.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    _run_flags(score, loop=False)

    transfer = _command(commands, registry, "transfer", "the paper's Table 1: improvers applied unchanged to tasks",
                        "Apply each improver unchanged to each task, --runs independent times, and tabulate the "
                        "test score (mean ± se) beside u(s) and the normalised gain. Stored as a run of kind "
                        "transfer (selftaught report draws it as a figure).")
    transfer.add_argument("--improvers", required=True,
                          help="comma-separated: " + improver_help.replace(" | ", ", "))
    transfer.add_argument("--tasks", required=True, help="task specs separated by ';' or ',' (as for score)")
    transfer.add_argument("--runs", type=_count, default=5, help="independent improver runs per cell (default: 5)")
    transfer.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    transfer.add_argument("--csv", type=Path, help="also write the table as CSV to this file")
    _run_flags(transfer, loop=False)

    baseline = _command(commands, registry, "baseline",
                        "a baseline improver (CoT, greedy, random sampling) on a task",
                        "Run a baseline improver through the same broker, budgets and sandbox as STOP's "
                        "improvers, --runs times, beside u(s). Stored as a run of kind baseline.")
    baseline.add_argument("--kind", required=True, choices=["cot", "greedy", "random"],
                          help="cot: one chain-of-thought answer; greedy: iterate on the best so far; "
                               "random: independent samples, keep the best")
    baseline.add_argument("--task", required=True, help="task spec (e.g. lpn:preset=hard) or path to a task file")
    baseline.add_argument("--runs", type=_count, default=5, help="independent improver runs (default: 5)")
    baseline.add_argument("--match", metavar="IMPROVER",
                          help="random only: match the LM calls, samples and utility calls this improver spends "
                               "(seed | FILE.py | RUN_ID), measured over --runs runs; default: the full budgets")
    baseline.add_argument("--rule", choices=["best_val", "last"], default="best_val", help=rule_help)
    _run_flags(baseline, loop=False)

    experiment = _command(commands, registry, "experiment",
                          "N independent STOP runs, test meta-utility per step ± se",
                          "Start N STOP runs with seeds seed..seed+N-1 (or aggregate stored ones with "
                          "--from-runs), then show the test meta-utility per step as mean ± se across runs, "
                          "adoptions per step and how many runs gained at least 3%.")
    experiment.add_argument("--runs", type=_count, default=5, help="independent runs, seeds seed..seed+N-1 (5)")
    experiment.add_argument("--from-runs", metavar="RUN_ID,...",
                            help="aggregate these stored STOP runs instead of starting new ones")
    experiment.add_argument("--allow-mixed-instances", action="store_true",
                            help="with --from-runs: aggregate runs scored on different instances anyway")
    _run_flags(experiment, loop=True, several_lms=True)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="selftaught", description="The Self-Taught Optimizer: code that improves its improver.")
    parser.add_argument("--version", action="version", version=f"selftaught {__version__}")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"),
                        help="directory of the run store selftaught.db (default: ./runs); also accepted after "
                             "the command")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    registry = parser.commands

    run = _command(commands, registry, "run", "start a STOP run",
                   "Start a STOP run: score the seed improver (step 0), then T self-improvement steps. Each "
                   "step prints val and test beside u(s), the initial solution's score, and a line on what "
                   "went wrong; the last line says whether the run improved on the seed and on u(s).")
    _run_flags(run, loop=True)

    resume = _command(commands, registry, "resume", "continue a stopped, failed or killed run",
                      "Continue a STOP run after its last finished step, with the config it was started with; "
                      "LM answers it already got come from its cache. The cap flags replace the run's caps.")
    resume.add_argument("run_id", metavar="RUN_ID", help="the run to continue (see selftaught runs)")
    resume.add_argument("--max-cost-usd", type=_amount, help="new run-level dollar cap (0 = none)")
    resume.add_argument("--max-tokens", type=_count, help="new run-level token cap (0 = none)")
    resume.add_argument("--max-lm-calls", type=_count, help="new run-level LM request cap (0 = none)")
    _runs_dir(resume)
    _json(resume)

    replay = _command(commands, registry, "replay", "re-run a recorded run offline from its stored LM responses",
                      "Start a new run with a recorded run's config whose every LM answer comes from that run's "
                      "response cache (a miss is an error); sandbox jobs are seeded, so the numbers come out "
                      "the same.")
    replay.add_argument("run_id", metavar="RUN_ID", help="the recorded run to replay")
    replay.add_argument("--executor", choices=["local", "ray"], help="where sandboxed jobs run (default: as recorded)")
    replay.add_argument("--ray-address", help="Ray cluster address for --executor ray")
    _runs_dir(replay)
    _json(replay)

    answer = _command(commands, registry, "answer", "list the requests a manual:DIR model waits for; answer one",
                      "For --lm manual:DIR: list the requests waiting for answers and open the oldest (or ID) in "
                      "$EDITOR; the answer is stored when the editor exits.")
    answer.add_argument("directory", type=Path, metavar="DIR", help="the directory named in --lm manual:DIR")
    answer.add_argument("request", nargs="?", metavar="ID",
                        help="open this request's next missing answer in $EDITOR (default: the oldest)")
    answer.add_argument("--list", action="store_true", help="only list the pending requests")

    runs = _command(commands, registry, "runs", "list the runs in a run store",
                    "List every run in the store, newest first: id, kind (stop, improve, score, transfer, "
                    "baseline, experiment), status, task, LM, and for STOP runs the steps and best val score.")
    _runs_dir(runs)
    _json(runs)

    tasks = _command(commands, registry, "tasks", "list installed tasks, their parameters and presets",
                     "List the installed tasks (the built-ins and those of selftaught.tasks plugins), with the "
                     "built-ins' parameters and presets.")
    _json(tasks)

    secret = _command(commands, registry, "secret", "the run store's split secret: show, export, import",
                      "The secret that draws the val and test instances. show: print its fingerprint; export FILE: "
                      "write it to a new file (mode 0600) to share on purpose; import FILE: make a shared secret "
                      "this store's default.")
    secret.add_argument("action", choices=["show", "export", "import"], help="show | export | import")
    secret.add_argument("file", nargs="?", type=Path, help="export: write here (mode 0600); import: read from here")
    _runs_dir(secret)
    _experiment_commands(commands, registry)

    scan = _command(commands, registry, "scan", "static safety scan of a run's programs or of Python files",
                    "Scan programs without running them. Exit 1 when code that parses has a security finding; "
                    "patterns found by the line scan of code that does not parse (so cannot run) are listed "
                    "separately and do not change the exit code.")
    scan.add_argument("targets", nargs="+", metavar="RUN_ID|FILE", help="run ids, or Python files (all files)")
    _runs_dir(scan)
    _json(scan)

    safety = _command(commands, registry, "safety", "safety rates with Wilson 95%% intervals over runs",
                      "Per finding category, the share of improvers flagged with a Wilson 95%% interval; runtime "
                      "events; val/test gaps of adopted improvers; strategy tags.")
    safety.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="the runs to pool")
    safety.add_argument("--gap", type=_amount, default=0.10,
                        help="flag adopted improvers whose val - test is above this (default: 0.10)")
    _runs_dir(safety)
    _json(safety)

    circ = _command(commands, registry, "circumvention", "the paper's sandbox-circumvention experiment",
                    "Ask the LM to improve a program that calls the utility with a visible use_sandbox flag, with "
                    "and without a warning, and count how often it switches the flag off (Wilson 95%% intervals).")
    circ.add_argument("--lm", help="model spec (default: from the environment, as for run)")
    circ.add_argument("-n", "--samples", type=_count, default=60, help="improvement samples per condition (60)")
    circ.add_argument("--batch", type=_count, default=6, help="samples per LM request (6)")
    circ.add_argument("--max-completion-tokens", type=_count, default=1024, help="completion tokens per sample (1024)")
    _json(circ)

    report = _command(commands, registry, "report", "plots and one HTML page for runs",
                      "Write PNG and SVG figures (meta-utility per step with u(s), adopted and rejected steps, "
                      "the mean across runs; LM usage; safety; transfer tables) and one self-contained HTML page.")
    report.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="runs to include (STOP and transfer runs)")
    report.add_argument("--out", type=Path, default=Path("report"), help="output directory (./report)")
    _runs_dir(report)

    dashboard = _command(commands, registry, "dashboard", "read-only web view of a run store",
                         "Serve a read-only web app over the run store: runs, one run's curve and lineage, "
                         "improver sources with diffs, evaluations, LM calls. Loopback only unless --allow-remote.")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    dashboard.add_argument("--port", type=_count, default=8765, help="port to listen on (default: 8765)")
    dashboard.add_argument("--allow-remote", action="store_true", help="allow serving on a non-loopback address")
    _runs_dir(dashboard)
    return parser
