"""The ``selftaught`` command line: thin commands over ``selftaught.app``.

Anything a user can cause ends as one line on stderr and a non-zero exit code: 2 for bad flags,
1 for every other ``SelftaughtError``, 130 when interrupted. Never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from selftaught import __version__, app
from selftaught.config import RunConfig, load_toml
from selftaught.errors import ConfigError, SelftaughtError
from selftaught.lm.registry import default_spec
from selftaught.progress import ProgressView
from selftaught.store import RunStore
from selftaught.tasks import list_tasks

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"selftaught: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="selftaught", description="The Self-Taught Optimizer: code that improves its improver.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="start a STOP run")
    parser.add_argument("--version", action="version", version=f"selftaught {__version__}")

    run.add_argument("--task", help="task name or path to a task file (default: lpn)")
    run.add_argument("--iterations", type=_positive_int, help="self-improvement steps T (default: 2)")
    run.add_argument("--repeats", type=_positive_int, help="improver runs per meta-utility estimate (default: 3)")
    run.add_argument("--lm", help="openai:MODEL | anthropic:MODEL | local[:PATH.gguf] | ... (default: from env)")
    run.add_argument("--seed", type=int, help="run seed (default: 0)")
    run.add_argument("--accept", choices=["best", "paper"], help="acceptance rule (default: best)")
    run.add_argument("--config", type=Path, help="TOML file with any RunConfig fields; flags override it")
    run.add_argument("--lm-calls", type=_positive_int, help="LM calls per improver run (default: 4)")
    run.add_argument("--responses-per-call", type=_positive_int, help="samples per LM call (default: 6)")
    run.add_argument("--utility-calls", type=_positive_int, help="utility calls per improver run (default: 25)")
    run.add_argument("--improver-timeout", type=float, help="seconds per improver run (default: 900)")
    run.add_argument("--max-tokens", type=_positive_int, help="completion tokens per sample (default: 1024)")
    run.add_argument("--workers", type=_positive_int, help="sandbox worker processes (default: 2)")
    run.add_argument("--strict-sandbox", action="store_true", help="refuse to run without full isolation")
    _common(run)

    resume = commands.add_parser("resume", help="continue a stopped or killed run")
    resume.add_argument("run_id")
    _common(resume)

    runs = commands.add_parser("runs", help="list the runs in a runs directory")
    runs.add_argument("--runs-dir", type=Path, default=Path("runs"))

    commands.add_parser("tasks", help="list installed tasks")
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the run store lives (./runs)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _config_from(args: argparse.Namespace, env: dict[str, str]) -> RunConfig:
    data: dict[str, Any] = load_toml(args.config) if args.config else {}
    base = RunConfig.from_dict(data)
    lm_spec = args.lm or (base.lm.spec if "spec" in data.get("lm", {}) else default_spec(env))
    return dataclasses.replace(
        base,
        task=_pick(args.task, base.task),
        iterations=_pick(args.iterations, base.iterations),
        repeats=_pick(args.repeats, base.repeats),
        seed=_pick(args.seed, base.seed),
        accept=_pick(args.accept, base.accept),
        lm=dataclasses.replace(base.lm, spec=lm_spec, max_tokens=_pick(args.max_tokens, base.lm.max_tokens)),
        budgets=dataclasses.replace(
            base.budgets,
            lm_calls=_pick(args.lm_calls, base.budgets.lm_calls),
            responses_per_call=_pick(args.responses_per_call, base.budgets.responses_per_call),
            utility_calls=_pick(args.utility_calls, base.budgets.utility_calls),
            improver_timeout_s=_pick(args.improver_timeout, base.budgets.improver_timeout_s),
        ),
        sandbox=dataclasses.replace(
            base.sandbox,
            workers=_pick(args.workers, base.sandbox.workers),
            strict=args.strict_sandbox or base.sandbox.strict,
        ),
    )


def _pick(flag: Any, default: Any) -> Any:
    return default if flag is None else flag


def _run(args: argparse.Namespace, env: dict[str, str]) -> int:
    config = _config_from(args, env)
    view = ProgressView(config.iterations + 1)
    if not args.lm:
        view.line(f"language model: {config.lm.spec} (choose another with --lm)")
    with view:
        summary = app.start_run(config, args.runs_dir, env, view.iteration, view.line, view.record)
    return _report(summary, args.json, view)


def _resume(args: argparse.Namespace, env: dict[str, str]) -> int:
    run = RunStore.in_dir(args.runs_dir).get_run(args.run_id)
    view = ProgressView(int(run.config.get("iterations", 0)) + 1)
    with view:
        summary = app.resume_run(args.run_id, args.runs_dir, env, view.iteration, view.line, view.record)
    return _report(summary, args.json, view)


def _report(summary: app.RunSummary, as_json: bool, view: ProgressView) -> int:
    if as_json:
        print(json.dumps(summary.to_json()))
    else:
        view.line(
            f"run {summary.run_id} {summary.status}: {len(summary.iterations)} steps, "
            f"{summary.lm_calls} LM calls, {summary.completions} completions, ${summary.cost_usd:.4f}"
        )
    return 0


def _runs(args: argparse.Namespace) -> int:
    if not (args.runs_dir / "selftaught.db").exists():
        raise ConfigError(f"no run store in {args.runs_dir}")
    store = RunStore.in_dir(args.runs_dir)
    for run in store.list_runs():
        rows = store.iterations(run.id)
        best = max((row.val for row in rows if row.accepted and row.val is not None), default=None)
        best_text = "-" if best is None else f"{best:.3f}"
        print(f"{run.id}  {run.status:<8}  task={run.task}  lm={run.lm}  steps={len(rows)}  best_val={best_text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``selftaught`` console script; returns the exit code."""
    args = _build_parser().parse_args(argv)
    env = dict(os.environ)
    try:
        if args.command == "run":
            return _run(args, env)
        if args.command == "resume":
            return _resume(args, env)
        if args.command == "runs":
            return _runs(args)
        if args.command == "tasks":
            print("\n".join(list_tasks()))
            return 0
    except SelftaughtError as exc:
        print(f"selftaught: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("selftaught: interrupted; finished steps are kept (selftaught resume RUN_ID)", file=sys.stderr)
        return 130
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
