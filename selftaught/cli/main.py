"""Entry point of the ``selftaught`` command line: dispatch, and errors as one line.

Anything a user can cause ends as one line on stderr and a non-zero exit code: 2 for bad flags,
1 for every other ``SelftaughtError``, 130 when interrupted. Never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from selftaught.cli import analysis, answer, experiment, experiments, runs
from selftaught.cli.parser import build_parser
from selftaught.errors import SelftaughtError

__all__ = ["main"]

COMMANDS: dict[str, Callable[..., int]] = {
    "run": runs.run,
    "resume": runs.resume,
    "replay": runs.replay,
    "runs": runs.list_runs,
    "tasks": runs.list_tasks,
    "secret": runs.secret,
    "improve": experiments.improve,
    "score": experiments.score,
    "transfer": experiments.transfer,
    "baseline": experiments.baseline,
    "experiment": experiment.experiment,
    "answer": answer.answer,
    "scan": analysis.scan,
    "safety": analysis.safety,
    "circumvention": analysis.circumvention,
    "report": analysis.report,
    "dashboard": analysis.dashboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    try:
        return COMMANDS[args.command](args, env)
    except SelftaughtError as exc:
        print(f"selftaught: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"selftaught: {_interrupted(exc)}", file=sys.stderr)
        return 130


def _interrupted(exc: KeyboardInterrupt) -> str:
    """What Ctrl-C left behind, naming the run when one was open (``app.RunInterrupted``)."""
    run_id, kind = getattr(exc, "run_id", None), getattr(exc, "kind", "")
    if not run_id:
        return "interrupted before a run was stored"
    if kind == "stop":
        return f"interrupted; the finished steps of run {run_id} are kept: selftaught resume {run_id}"
    return f"interrupted; run {run_id} ({kind}) is marked stopped and what it recorded is kept"


if __name__ == "__main__":
    sys.exit(main())
