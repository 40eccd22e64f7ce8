"""Commands that study improvers: improve, score, transfer, baseline, experiment.

Each is thin: it resolves improvers and tasks (before anything is stored, so a typo leaves no
run behind) into an *invocation* (plain data, improver sources included), opens a session of its
own kind with ``app.open_session`` (which stores the invocation) and calls the
``selftaught.experiments`` library; ``run_kind`` does that, and ``replay``/``resume`` call it again
with the stored invocation. ``--dry-run`` prints the cost bound instead; a real run prints it first.
Tables go to stdout (or one JSON document with ``--json``), notes to stderr. ``experiment`` lives
in ``cli.experiment``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console, Group

from selftaught import app
from selftaught.cli.runs import config_from
from selftaught.config import RunConfig
from selftaught.errors import ConfigError, SelftaughtError
from selftaught.experiments import (
    BASELINES,
    baseline_source,
    improve_once,
    measure_usage,
    record_transfer,
    score_improver,
    select_improver,
    transfer_table,
)
from selftaught.experiments.apply import ImproveResult, ImproverScore
from selftaught.experiments.cost import bound
from selftaught.experiments.paper import paper_json, paper_rich
from selftaught.experiments.tables import improve_rich, score_rich, transfer_rich, write_csv
from selftaught.experiments.transfer import TransferTable
from selftaught.improver import SEED_IMPROVER
from selftaught.progress import ProgressView
from selftaught.store import DB_NAME, RunStore
from selftaught.store.splits import run_splits
from selftaught.tasks import get_task
from selftaught.tasks.base import Task
from selftaught.tasks.params import split_specs

__all__ = ["COMMAND_KINDS", "baseline", "improve", "run_kind", "score", "show_bound", "transfer"]


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


def _specs(text: str, scoring: str) -> list[str]:
    """The canonical specs of ``--tasks``, each checked (before anything is stored)."""
    specs = [_spec(spec, scoring) for spec in split_specs(text)]
    if not specs:
        raise ConfigError("--tasks needs at least one task name")
    if len(set(specs)) != len(specs):
        raise ConfigError(f"a task is listed twice in --tasks {text}")
    return specs


def _spec(spec: str, scoring: str) -> str:
    task = get_task(spec, scoring=scoring)  # type: ignore[arg-type]
    return str(getattr(task, "spec", spec))


def _provenance(session: app.RunSession) -> dict[str, Any]:
    """What a result was scored on: the scoring, the split secret's fingerprint, and per task spec
    the fingerprint of its instances (equal fingerprints: the same instances, on any machine)."""
    instances = {row.task: row.instances for row in run_splits(session.store, session.run_id)}
    secret = session.secret.fingerprint if session.secret else ""
    return {"scoring": session.config.scoring, "secret": secret, "instances": instances}


def _bound(session: app.RunSession, specs: list[str]) -> list[Task]:
    """The tasks as the session scores them: its secret, its scoring, recorded in the run."""
    return [session.task(spec) for spec in specs]


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


def _as_json(chosen: _Improver) -> dict[str, str]:
    return {"label": chosen.label, "source": chosen.source, "origin": chosen.origin}


def _from_json(data: Any) -> _Improver:
    return _Improver(str(data["label"]), str(data["source"]), str(data["origin"]))


def _dry_run(args: argparse.Namespace, config: RunConfig, tasks: list[Task], **counts: Any) -> bool:
    """With ``--dry-run``: print what the command may cost and return True (the command then stops)."""
    if not getattr(args, "dry_run", False):
        return False
    show_bound(args.command, config, tasks, args.json, **counts)
    return True


def show_bound(command: str, config: RunConfig, tasks: list[Task], as_json: bool, **counts: Any) -> None:
    """Print the cost bound of ``command`` (JSON on stdout with ``as_json``)."""
    found = bound(command, config, tasks, app.price_table(config), **counts)
    if as_json:
        print(json.dumps({"dry_run": found.to_json()}))
    else:
        Console(highlight=False).print("\n".join(found.lines()), markup=False)


def _headline(config: RunConfig, command: str, tasks: list[Task], **counts: Any) -> str:
    """The cost bound, for the first line of a real run."""
    return bound(command, config, tasks, app.price_table(config), **counts).headline()


def improve(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Apply one improver once to a task's initial solution; show before and after on val and test."""
    config = _config(args, env, args.task)
    spec = _spec(args.task, config.scoring)
    chosen = _resolve(args.improver, args.runs_dir, args.rule)
    config = dataclasses.replace(config, task=spec)
    task = get_task(spec, scoring=config.scoring)
    if _dry_run(args, config, [task]):
        return 0
    headline = _headline(config, "improve", [task])
    invocation = {"task": spec, "improver": _as_json(chosen)}
    return run_kind("improve", config, args, env, invocation, headline=headline)


def score(args: argparse.Namespace, env: dict[str, str]) -> int:
    """An improver's meta-utility over tasks: raw and normalised per task, and the normalised mean."""
    config = _config(args, env, args.tasks)
    specs = _specs(args.tasks, config.scoring)
    chosen = _resolve(args.improver, args.runs_dir, args.rule)
    config = dataclasses.replace(config, task=";".join(specs))
    _positive(config.repeats, "--repeats")
    tasks = [get_task(spec, scoring=config.scoring) for spec in specs]
    if _dry_run(args, config, tasks):
        return 0
    headline = _headline(config, "score", tasks)
    invocation = {"tasks": specs, "improver": _as_json(chosen), "split": args.split}
    return run_kind("score", config, args, env, invocation, headline=headline)


def transfer(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Table 1: u(s) and each improver's test score (mean ± se over --runs runs) per task; stored in the run."""
    runs = _positive(args.runs, "--runs")
    chosen = [_resolve(spec, args.runs_dir, args.rule) for spec in args.improvers.split(",") if spec.strip()]
    if not chosen:
        raise ConfigError("--improvers needs at least one improver")
    labels = [c.label for c in chosen]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"an improver is listed twice in --improvers {args.improvers}")
    config = _config(args, env, args.tasks, repeats=runs)
    specs = _specs(args.tasks, config.scoring)
    config = dataclasses.replace(config, task=";".join(specs))
    tasks = [get_task(spec, scoring=config.scoring) for spec in specs]
    if _dry_run(args, config, tasks, runs=runs, improvers=len(chosen)):
        return 0
    headline = _headline(config, "transfer", tasks, runs=runs, improvers=len(chosen))
    invocation = {"tasks": specs, "improvers": [_as_json(c) for c in chosen], "runs": runs,
                  "csv": str(args.csv) if args.csv else ""}
    return run_kind("transfer", config, args, env, invocation, headline=headline)


def baseline(args: argparse.Namespace, env: dict[str, str]) -> int:
    """A baseline improver over --runs runs beside u(s); ``random --match X`` also runs X with matched compute."""
    runs = _positive(args.runs, "--runs")
    if args.match and args.kind != "random":
        raise ConfigError("--match applies to --kind random only")
    config = _config(args, env, args.task, repeats=runs)
    spec = _spec(args.task, config.scoring)
    matched = _resolve(args.match, args.runs_dir, args.rule) if args.match else None
    config = dataclasses.replace(config, task=spec)
    task = get_task(spec, scoring=config.scoring)
    if _dry_run(args, config, [task], runs=runs, match=matched is not None):
        return 0
    headline = _headline(config, "baseline", [task], runs=runs, match=matched is not None)
    invocation = {"task": spec, "kind": args.kind, "runs": runs,
                  "match": None if matched is None else _as_json(matched)}
    return run_kind("baseline", config, args, env, invocation, headline=headline)


def run_kind(
    kind: str, config: RunConfig, args: argparse.Namespace, env: dict[str, str], invocation: dict[str, Any],
    run_id: str | None = None, headline: str = "", secret_of: str | None = None,
) -> int:
    """Do what ``invocation`` asks in a session of ``kind`` (a new run, or ``run_id`` to resume it); print it.

    ``headline`` (the cost bound) is printed first, once the run exists; ``secret_of`` names the run
    whose split secret to use (``replay``)."""
    view = _view(_activity(kind, config, invocation))
    document, renderable, after, verdicts = None, None, "", list[str]()
    with view, app.open_session(config, args.runs_dir, env, kind=kind, run_id=run_id, invocation=invocation,
                                secret_of=secret_of,
                                on_created=lambda new_id: view.line(headline) if headline else None,
                                **_session_kwargs(view)) as session:
        document, renderable, after, verdicts = _KINDS[kind](session, invocation)
        document = {**_provenance(session), **document}
    if document is None:
        raise _stopped(session.store, session.run_id)
    _explain(view, f"{kind}/")
    for text in verdicts:
        view.line(f"result: {text}")
    summary = app.summarize(session.store, session.run_id)
    _emit(args.json, {"run_id": session.run_id, **document, "usage": summary.to_json()}, renderable)
    if not args.json:
        if after:
            print(after)
        view.line(f"run {session.run_id} {summary.status}: {summary.usage_line()}")
    return 0


def _activity(kind: str, config: RunConfig, invocation: dict[str, Any]) -> str:
    """What a command of ``kind`` is doing, for its progress lines."""
    if kind == "improve":
        return f"applying {invocation['improver']['label']} to {invocation['task']}"
    if kind == "score":
        return (f"scoring {invocation['improver']['label']} on {len(invocation['tasks'])} task(s) x "
                f"{config.repeats} runs")
    if kind == "transfer":
        return (f"transfer: {len(invocation['improvers'])} improver(s) x {len(invocation['tasks'])} task(s) x "
                f"{invocation['runs']} runs")
    return f"baseline {invocation['kind']} on {invocation['task']} x {invocation['runs']} runs"


Result = tuple[dict[str, Any], Any, str, list[str]]
"""What a command made: its JSON document, its table, text for stdout after it, and verdicts in words."""


def _do_improve(session: app.RunSession, invocation: dict[str, Any]) -> Result:
    task, chosen = session.task(invocation["task"]), _from_json(invocation["improver"])
    session.recorder.event("improver_selected", f"{chosen.label}: {chosen.origin}")
    result = improve_once(session.broker, task, chosen.source, "improve")
    document = {"improver": chosen.label, "origin": chosen.origin, **result.to_json()}
    return document, improve_rich(result), result.solution or "", [_improve_verdict(result)]


def _do_score(session: app.RunSession, invocation: dict[str, Any]) -> Result:
    tasks, chosen = _bound(session, invocation["tasks"]), _from_json(invocation["improver"])
    session.recorder.event("improver_selected", f"{chosen.label}: {chosen.origin}")
    result = score_improver(session.broker, tasks, chosen.source, session.config.repeats, "score",
                            split=invocation["split"], name=chosen.label)
    return {"origin": chosen.origin, **result.to_json()}, score_rich(result), "", [_score_verdict(result)]


def _do_transfer(session: app.RunSession, invocation: dict[str, Any]) -> Result:
    tasks = _bound(session, invocation["tasks"])
    chosen = [_from_json(item) for item in invocation["improvers"]]
    for c in chosen:
        session.recorder.event("improver_selected", f"{c.label}: {c.origin}")
    table = transfer_table(session.broker, tasks, {c.label: c.source for c in chosen}, invocation["runs"],
                           "transfer", origins={c.label: c.origin for c in chosen})
    record_transfer(session.store, session.run_id, table)
    if invocation.get("csv"):
        write_csv(table, Path(invocation["csv"]))
    document: dict[str, Any] = table.to_json()
    if session.config.scoring != "reference":
        return document, transfer_rich(table), "", _table_verdict(table)
    document["paper_table1"] = paper_json(table, invocation["tasks"])
    return document, Group(transfer_rich(table), paper_rich(table, invocation["tasks"])), "", _table_verdict(table)


def _do_baseline(session: app.RunSession, invocation: dict[str, Any]) -> Result:
    task, runs, kind = session.task(invocation["task"]), int(invocation["runs"]), str(invocation["kind"])
    matched = None if invocation.get("match") is None else _from_json(invocation["match"])
    improvers, origins, usage = {}, {}, None
    if matched is not None:
        usage = measure_usage(session.broker, session.store, session.run_id, task, matched.source, runs,
                              "baseline/usage")
        improvers[matched.label], origins[matched.label] = matched.source, matched.origin
    name = f"random (matched to {matched.label})" if matched is not None else kind
    improvers[name] = baseline_source(kind, usage)
    origins[name] = (f"compute-matched: at most {usage.lm_calls:.2f} LM calls, {usage.samples:.2f} samples, "
                     f"{usage.utility_calls:.2f} utility calls per run (means, rounded up)" if usage is not None
                     else f"baseline {kind}" + (" (full budgets)" if kind == "random" else ""))
    table = transfer_table(session.broker, [task], improvers, runs, "baseline", origins=origins)
    record_transfer(session.store, session.run_id, table)
    document = {"kind": kind, "matched_usage": usage and usage.to_json(), **table.to_json()}
    return document, transfer_rich(table), "", _table_verdict(table)


_KINDS = {"improve": _do_improve, "score": _do_score, "transfer": _do_transfer, "baseline": _do_baseline}
COMMAND_KINDS = tuple(_KINDS)
"""Run kinds other than ``stop`` that ``run_kind`` can do again from their stored invocation."""
