"""Commands that study improvers: improve, score, transfer, baseline, experiment.

Each is thin: it resolves improvers and tasks (before anything is stored, so a typo leaves no
run behind), opens a session of its own kind with ``app.open_session`` and calls the
``selftaught.experiments`` library; ``experiment`` starts N STOP runs with ``app.start_run``.
Tables go to stdout (or one JSON document with ``--json``), notes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from selftaught import app
from selftaught.cli.runs import config_from
from selftaught.config import RunConfig
from selftaught.errors import ConfigError, SelftaughtError
from selftaught.experiments import (
    BASELINES,
    aggregate,
    baseline_source,
    from_store,
    improve_once,
    measure_usage,
    record_transfer,
    score_improver,
    select_improver,
    transfer_table,
)
from selftaught.experiments.apply import ImproveResult, ImproverScore
from selftaught.experiments.tables import experiment_rich, improve_rich, score_rich, transfer_rich, write_csv
from selftaught.experiments.transfer import TransferTable
from selftaught.improver import SEED_IMPROVER
from selftaught.progress import ProgressView, verdict
from selftaught.store import DB_NAME, RunStore
from selftaught.tasks import get_task
from selftaught.tasks.base import Task

__all__ = ["baseline", "experiment", "improve", "score", "transfer"]


@dataclasses.dataclass(frozen=True)
class _Improver:
    label: str
    source: str
    origin: str


def _view(activity: str) -> ProgressView:
    """Progress on stderr for a command without loop steps: a live status on a terminal, else a plain
    line every 30 s; ``session`` kwargs wire it to the run it shows."""
    view = ProgressView(0)
    view.activity = activity
    return view


def _session_kwargs(view: ProgressView) -> dict[str, Any]:
    return {"notify": view.line, "on_record": view.record, "on_open": view.watch}


def _explain(view: ProgressView, prefix: str) -> None:
    """The one-line account of what went wrong under ``prefix`` in the command's run, if anything did."""
    why = view.breakdown(prefix)
    if why is not None and why.anything_wrong:
        view.line(f"why: {why.summary()}")


def _improve_verdict(result: ImproveResult) -> str:
    if result.solution is None:
        return f"the improver returned no solution ({result.reason}), so nothing beat the initial solution"
    scores = (f"val {result.val:.3f} / test {result.test:.3f} against u(s) {result.initial_val:.3f} / "
              f"{result.initial_test:.3f}")
    better = [split for split, new, old in (("val", result.val, result.initial_val),
                                            ("test", result.test, result.initial_test)) if new > old]
    if not better:
        return f"nothing beat the initial solution: the new one scores {scores}"
    where = "val and test" if len(better) == 2 else f"{better[0]} only"
    return f"the new solution beats the initial solution on {where}: {scores}"


def _score_verdict(score: ImproverScore) -> str:
    beaten = [t.task for t in score.tasks if t.raw.mean > t.initial.mean]
    if not beaten:
        return f"{score.improver}: nothing beat the initial solution on any task ({score.split} split)"
    return f"{score.improver}: beat the initial solution on {', '.join(beaten)} ({score.split} split)"


def _table_verdict(table: TransferTable) -> list[str]:
    return [_score_verdict(column.score) for column in table.columns]


def _resolve(spec: str, runs_dir: Path, rule: str) -> _Improver:
    """seed, a baseline name, a file, or an improver of a stored STOP run chosen by ``rule``."""
    spec = spec.strip()
    if spec == "seed":
        return _Improver("seed", SEED_IMPROVER, "the seed improver I_0")
    if spec in BASELINES:
        return _Improver(spec, baseline_source(spec), f"baseline {spec} (full budgets)" if spec == "random"
                         else f"baseline {spec}")
    path = Path(spec)
    if path.suffix == ".py" or path.is_file():
        try:
            return _Improver(path.stem, path.read_text(), f"file {path}")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read improver file {path}: {exc}") from exc
    if not (runs_dir / DB_NAME).exists():
        raise ConfigError(f"{spec!r} is not seed, a baseline ({', '.join(BASELINES)}), a file, or a run id "
                          f"(no run store in {runs_dir})")
    store = RunStore.in_dir(runs_dir)
    try:
        store.get_run(spec)
        chosen = select_improver(store, spec, rule)
    finally:
        store.close()
    return _Improver(f"{spec}:{rule}", chosen.source, chosen.why)


def _tasks(text: str) -> list[Task]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--tasks needs at least one task name")
    if len(set(names)) != len(names):
        raise ConfigError(f"a task is listed twice in --tasks {text}")
    return [get_task(name) for name in names]


def _config(args: argparse.Namespace, env: dict[str, str], task: str, repeats: int | None = None) -> RunConfig:
    """The run flags parsed as for ``run``, with this command's task label and repeat count."""
    values = dict(vars(args), task=task)
    if repeats is not None:
        values["repeats"] = repeats
    return config_from(argparse.Namespace(**values), env)


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise ConfigError(f"{flag} must be at least 1, not {value}")
    return value


def _stopped(store: RunStore, run_id: str) -> SelftaughtError:
    """The error for a session that ended early (a run-level cap) before a result was made."""
    row = store.get_run(run_id)
    return SelftaughtError(f"run {run_id} {row.status} before it finished: {row.message}")


def _emit(as_json: bool, document: dict[str, Any], renderable: Any) -> None:
    if as_json:
        print(json.dumps(document))
    else:
        Console(highlight=False).print(renderable)


def improve(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Apply one improver once to a task's initial solution; show before and after on val and test."""
    task = get_task(args.task)
    chosen = _resolve(args.improver, args.runs_dir, args.rule)
    config = _config(args, env, task.name)
    result = None
    view = _view(f"applying {chosen.label} to {task.name}")
    with view, app.open_session(config, args.runs_dir, env, kind="improve", **_session_kwargs(view)) as session:
        session.recorder.event("improver_selected", f"{chosen.label}: {chosen.origin}")
        result = improve_once(session.broker, task, chosen.source, "improve")
    if result is None:
        raise _stopped(session.store, session.run_id)
    _explain(view, "improve/")
    view.line(f"result: {_improve_verdict(result)}")
    _emit(args.json, {"run_id": session.run_id, "improver": chosen.label, "origin": chosen.origin,
                      **result.to_json()}, improve_rich(result))
    if not args.json and result.solution is not None:
        print(result.solution)
    return 0


def score(args: argparse.Namespace, env: dict[str, str]) -> int:
    """An improver's meta-utility over tasks: raw and normalised per task, and the normalised mean."""
    tasks = _tasks(args.tasks)
    chosen = _resolve(args.improver, args.runs_dir, args.rule)
    config = _config(args, env, ",".join(t.name for t in tasks))
    _positive(config.repeats, "--repeats")
    result = None
    view = _view(f"scoring {chosen.label} on {len(tasks)} task(s) x {config.repeats} runs")
    with view, app.open_session(config, args.runs_dir, env, kind="score", **_session_kwargs(view)) as session:
        session.recorder.event("improver_selected", f"{chosen.label}: {chosen.origin}")
        result = score_improver(session.broker, tasks, chosen.source, config.repeats, "score", split=args.split,
                                name=chosen.label)
    if result is None:
        raise _stopped(session.store, session.run_id)
    _explain(view, "score/")
    view.line(f"result: {_score_verdict(result)}")
    _emit(args.json, {"run_id": session.run_id, "origin": chosen.origin, **result.to_json()}, score_rich(result))
    return 0


def transfer(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Table 1: u(s) and each improver's test score (mean ± se over --runs runs) per task; stored in the run."""
    tasks = _tasks(args.tasks)
    runs = _positive(args.runs, "--runs")
    chosen = [_resolve(spec, args.runs_dir, args.rule) for spec in args.improvers.split(",") if spec.strip()]
    if not chosen:
        raise ConfigError("--improvers needs at least one improver")
    labels = [c.label for c in chosen]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"an improver is listed twice in --improvers {args.improvers}")
    config = _config(args, env, ",".join(t.name for t in tasks), repeats=runs)
    table = None
    view = _view(f"transfer: {len(chosen)} improver(s) x {len(tasks)} task(s) x {runs} runs")
    with view, app.open_session(config, args.runs_dir, env, kind="transfer", **_session_kwargs(view)) as session:
        for c in chosen:
            session.recorder.event("improver_selected", f"{c.label}: {c.origin}")
        table = transfer_table(session.broker, tasks, {c.label: c.source for c in chosen}, runs, "transfer",
                               origins={c.label: c.origin for c in chosen})
        record_transfer(session.store, session.run_id, table)
    if table is None:
        raise _stopped(session.store, session.run_id)
    _explain(view, "transfer/")
    for text in _table_verdict(table):
        view.line(f"result: {text}")
    if args.csv:
        write_csv(table, args.csv)
    _emit(args.json, {"run_id": session.run_id, **table.to_json()}, transfer_rich(table))
    return 0


def baseline(args: argparse.Namespace, env: dict[str, str]) -> int:
    """A baseline improver over --runs runs beside u(s); ``random --match X`` also runs X with matched compute."""
    task = get_task(args.task)
    runs = _positive(args.runs, "--runs")
    if args.match and args.kind != "random":
        raise ConfigError("--match applies to --kind random only")
    matched = _resolve(args.match, args.runs_dir, args.rule) if args.match else None
    config = _config(args, env, task.name, repeats=runs)
    table, usage = None, None
    view = _view(f"baseline {args.kind} on {task.name} x {runs} runs")
    with view, app.open_session(config, args.runs_dir, env, kind="baseline", **_session_kwargs(view)) as session:
        improvers, origins = {}, {}
        if matched is not None:
            usage = measure_usage(session.broker, session.store, session.run_id, task, matched.source, runs,
                                  "baseline/usage")
            improvers[matched.label], origins[matched.label] = matched.source, matched.origin
        name = f"random (matched to {matched.label})" if matched is not None else args.kind
        improvers[name] = baseline_source(args.kind, usage)
        origins[name] = (f"compute-matched: at most {usage.lm_calls:.2f} LM calls, {usage.samples:.2f} samples, "
                         f"{usage.utility_calls:.2f} utility calls per run (means, rounded up)" if usage is not None
                         else f"baseline {args.kind}" + (" (full budgets)" if args.kind == "random" else ""))
        table = transfer_table(session.broker, [task], improvers, runs, "baseline", origins=origins)
        record_transfer(session.store, session.run_id, table)
    if table is None:
        raise _stopped(session.store, session.run_id)
    _explain(view, "baseline/")
    for text in _table_verdict(table):
        view.line(f"result: {text}")
    document = {"run_id": session.run_id, "kind": args.kind, "matched_usage": usage and usage.to_json(),
                **table.to_json()}
    _emit(args.json, document, transfer_rich(table))
    return 0


def experiment(args: argparse.Namespace, env: dict[str, str]) -> int:
    """N independent STOP runs (seeds seed..seed+N-1), then the test meta-utility per step with standard errors."""
    if args.from_runs:
        return _aggregate_stored(args)
    runs = _positive(args.runs, "--runs")
    config = config_from(args, env)
    get_task(config.task)  # an unknown task fails before the first run is stored
    summaries = []
    for index in range(runs):
        seeded = dataclasses.replace(config, seed=config.seed + index)
        view = ProgressView(seeded.iterations)
        view.line(f"experiment run {index + 1}/{runs}, seed {seeded.seed}")
        with view:
            summaries.append(app.start_run(seeded, args.runs_dir, env, view.iteration, view.line, view.record,
                                           on_open=view.watch))
        view.line(f"run {summaries[-1].run_id}: {verdict(summaries[-1].iterations, view.initial())}")
        if summaries[-1].message:
            view.line(summaries[-1].message)
    table = aggregate(summaries)
    _emit(args.json, {"experiment": table.to_json(), "runs": [s.to_json() for s in summaries]},
          experiment_rich(table))
    return 0


def _aggregate_stored(args: argparse.Namespace) -> int:
    """The experiment table of STOP runs already in the store (e.g. runs of an experiment cut short)."""
    if not (args.runs_dir / DB_NAME).exists():
        raise ConfigError(f"no run store in {args.runs_dir} (use --runs-dir)")
    store = RunStore.in_dir(args.runs_dir)
    run_ids = [run_id.strip() for run_id in args.from_runs.split(",") if run_id.strip()]
    for run_id in run_ids:
        if store.get_run(run_id).kind != "stop":
            raise ConfigError(f"run {run_id} is not a STOP run")
    table = aggregate(from_store(store, run_ids))
    _emit(args.json, {"experiment": table.to_json(), "runs": run_ids}, experiment_rich(table))
    return 0
