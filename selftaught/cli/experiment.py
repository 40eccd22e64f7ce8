"""``selftaught experiment``: N independent STOP runs per model, their curves side by side.

Each ``--lm`` (several may be given, as the paper compared GPT-4, GPT-3.5 and Mixtral) gets
``--runs`` STOP runs with seeds seed..seed+N-1. The experiment itself is stored as a run of kind
``experiment`` whose invocation lists each model's config and member runs (recorded as each run
starts), so ``resume`` finishes it (unfinished members resumed, missing ones started) and
``replay`` repeats it offline (each member replayed). The output: per model, the test
meta-utility per step (mean ± se across runs) and what the model cost; with matplotlib installed,
one figure with every model's curve.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from selftaught import app
from selftaught.cli.experiments import show_bound
from selftaught.cli.runs import config_from
from selftaught.config import RunConfig
from selftaught.errors import ConfigError
from selftaught.experiments import ExperimentTable, aggregate, from_store
from selftaught.experiments.cost import bound
from selftaught.experiments.tables import experiment_rich
from selftaught.progress import ProgressView, verdict
from selftaught.store import DB_NAME, RunStore
from selftaught.store.splits import run_splits
from selftaught.tasks import get_task

__all__ = ["experiment", "replay_experiment", "resume_experiment"]


def experiment(args: argparse.Namespace, env: dict[str, str]) -> int:
    """N independent STOP runs per ``--lm``, then the test meta-utility per step with standard errors."""
    if args.from_runs:
        return _aggregate_stored(args)
    runs = _positive(args.runs)
    specs = list(dict.fromkeys(args.lm or [None]))
    configs = [config_from(argparse.Namespace(**{**vars(args), "lm": spec}), env) for spec in specs]
    task = get_task(configs[0].task, scoring=configs[0].scoring)  # a bad spec fails before a run is stored
    if args.dry_run:
        for config in configs:
            show_bound("experiment", config, [task], args.json, runs=runs)
        return 0
    for config in configs:  # every model can be built (keys set) before anything is stored
        app.default_lm(config, env)
    stderr = Console(stderr=True, highlight=False)
    for config in configs:
        stderr.print(bound("experiment", config, [task], app.price_table(config), runs=runs).headline(),
                     markup=False)
    store = RunStore.in_dir(args.runs_dir)
    invocation = {"runs": runs, "models": [{"spec": c.lm.spec, "config": c.to_dict(), "members": []}
                                           for c in configs]}
    experiment_id = store.create_run(task.name, ",".join(c.lm.spec for c in configs), configs[0].seed,
                                     configs[0].to_dict(), [], "experiment")
    store.set_invocation(experiment_id, invocation)
    stderr.print(f"experiment {experiment_id} in {store.path}", markup=False)
    return _carry_out(store, experiment_id, args, env)


def resume_experiment(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Finish a stored experiment: resume its unfinished runs and start the ones never started."""
    store = RunStore.in_dir(args.runs_dir)
    return _carry_out(store, args.run_id, args, env)


def replay_experiment(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Repeat a stored experiment offline: every member run replayed from its recorded answers."""
    store = RunStore.in_dir(args.runs_dir)
    source = store.get_run(args.run_id)
    recorded = store.invocation(args.run_id)
    models = []
    for model in recorded.get("models", []):
        for member in model["members"]:
            config = RunConfig.from_dict(store.get_run(member).config)
            replayed = dataclasses.replace(config, lm=dataclasses.replace(config.lm, spec=f"replay:{member}"))
            models.append({"spec": model["spec"], "config": replayed.to_dict(), "members": []})
    if not models:
        raise ConfigError(f"experiment {args.run_id} has no runs to replay")
    # One entry per member run (a replayed run has its own spec), grouped back by model when shown.
    invocation = {"runs": 1, "models": models, "replay_of": args.run_id}
    experiment_id = store.create_run(source.task, source.lm, source.seed, source.config, [], "experiment")
    store.set_invocation(experiment_id, invocation)
    return _carry_out(store, experiment_id, args, env)


def _carry_out(store: RunStore, experiment_id: str, args: argparse.Namespace, env: dict[str, str]) -> int:
    """Run (or finish) every member run of the experiment, then show each model's table and cost."""
    invocation = store.invocation(experiment_id)
    runs = int(invocation["runs"])
    summaries: dict[str, list[app.RunSummary]] = {}
    status, message = "failed", ""
    try:
        for index_model, model in enumerate(invocation["models"]):
            config = RunConfig.from_dict(model["config"])
            for index in range(runs):
                members = store.invocation(experiment_id)["models"][index_model]["members"]
                summary = _member(store, experiment_id, index_model, members[index] if index < len(members)
                                  else None, dataclasses.replace(config, seed=config.seed + index), args, env)
                summaries.setdefault(model["spec"], []).append(summary)
        _same_instances(store, [s.run_id for found in summaries.values() for s in found], refuse=False)
        unfinished = [s.run_id for runs_ in summaries.values() for s in runs_ if s.status != "finished"]
        status = "stopped" if unfinished else "finished"
        message = f"runs not finished: {', '.join(unfinished)}" if unfinished else ""
    except KeyboardInterrupt:
        status, message = "stopped", f"interrupted; resume with: selftaught resume {experiment_id}"
        raise
    except Exception as exc:
        message = str(exc)
        raise
    finally:
        store.set_status(experiment_id, status, message)
    _show(experiment_id, summaries, args)
    return 0


def _member(
    store: RunStore, experiment_id: str, index_model: int, run_id: str | None, config: RunConfig,
    args: argparse.Namespace, env: dict[str, str],
) -> app.RunSummary:
    """One member run: started (and recorded in the experiment), resumed, or read back if finished."""
    if run_id is not None and store.get_run(run_id).status == "finished":
        return app.summarize(store, run_id)
    view = ProgressView(config.iterations)
    view.line(f"experiment {experiment_id}: {config.lm.spec}, seed {config.seed}")

    def joined(new_id: str) -> None:
        invocation = store.invocation(experiment_id)
        invocation["models"][index_model]["members"].append(new_id)
        store.set_invocation(experiment_id, invocation)

    with view:
        if run_id is None:
            summary = app.start_run(config, args.runs_dir, env, view.iteration, view.line, view.record,
                                    on_created=joined, on_open=view.watch)
        else:
            caps = {name: value for name, value in (("max_cost_usd", getattr(args, "max_cost_usd", None)),
                                                    ("max_total_tokens", getattr(args, "max_tokens", None)),
                                                    ("max_calls", getattr(args, "max_lm_calls", None)))
                    if value is not None}
            summary = app.resume_run(run_id, args.runs_dir, env, view.iteration, view.line, view.record, caps=caps,
                                     on_open=view.watch)
    view.line(f"run {summary.run_id}: {verdict(summary.iterations, view.initial())}")
    if summary.message:
        view.line(summary.message)
    return summary


def _show(experiment_id: str, summaries: dict[str, list[app.RunSummary]], args: argparse.Namespace) -> None:
    tables = {model: aggregate(found) for model, found in summaries.items()}
    documents = [{"model": model, "experiment": tables[model].to_json(), "runs": [s.to_json() for s in found],
                  **_cost(found)} for model, found in summaries.items()]
    figure = _plot(experiment_id, tables, Path(args.runs_dir)) if len(tables) > 1 else []
    if args.json:
        single = documents[0] if len(documents) == 1 else {}
        print(json.dumps({"experiment_id": experiment_id, "models": documents,
                          **({"experiment": single["experiment"], "runs": single["runs"]} if single else {}),
                          "figure": [str(path) for path in figure]}))
        return
    console = Console(highlight=False)
    for document, (model, table) in zip(documents, tables.items(), strict=True):
        rendered = experiment_rich(table)
        rendered.title = f"{model}: {rendered.title}"
        console.print(rendered)
        console.print(f"{model}: {document['lm_calls']} LM calls (+{document['cached_calls']} from the cache), "
                      f"{document['truncated']} truncated samples, ${document['cost_usd']:.4f} (estimate)",
                      markup=False)
    if figure:
        console.print(f"figure: {', '.join(str(path) for path in figure)}", markup=False)


def _cost(found: list[app.RunSummary]) -> dict[str, Any]:
    return {"lm_calls": sum(s.lm_calls for s in found), "cached_calls": sum(s.cached_calls for s in found),
            "truncated": sum(s.truncated for s in found), "cost_usd": sum(s.cost_usd for s in found),
            "cost_is_estimate": True}


def _plot(experiment_id: str, tables: dict[str, ExperimentTable], runs_dir: Path) -> list[Path]:
    """Every model's incumbent test curve in one figure next to the run store; [] without matplotlib."""
    try:
        from selftaught.report.plots import plot_models

        curves = {model: [(row.t, row.incumbent.mean, row.incumbent.se) for row in table.steps
                          if row.incumbent is not None] for model, table in tables.items()}
        return plot_models(curves, runs_dir / f"experiment-{experiment_id}")
    except ConfigError as exc:  # matplotlib is an optional extra
        Console(stderr=True, highlight=False).print(f"no figure: {exc}", markup=False)
        return []


def _positive(value: int) -> int:
    if value < 1:
        raise ConfigError(f"--runs must be at least 1, not {value}")
    return value


def _aggregate_stored(args: argparse.Namespace) -> int:
    """The experiment table of STOP runs already in the store (e.g. runs of an experiment cut short)."""
    if not (args.runs_dir / DB_NAME).exists():
        raise ConfigError(f"no run store in {args.runs_dir} (use --runs-dir)")
    store = RunStore.in_dir(args.runs_dir)
    run_ids = [run_id.strip() for run_id in args.from_runs.split(",") if run_id.strip()]
    for run_id in run_ids:
        if store.get_run(run_id).kind != "stop":
            raise ConfigError(f"run {run_id} is not a STOP run")
    _same_instances(store, run_ids, refuse=not args.allow_mixed_instances)
    table = aggregate(from_store(store, run_ids))
    if args.json:
        print(json.dumps({"experiment": table.to_json(), "runs": run_ids}))
    else:
        Console(highlight=False).print(experiment_rich(table))
    return 0


def _same_instances(store: RunStore, run_ids: list[str], refuse: bool) -> None:
    """Refuse (or warn about) runs scored on different instances: their numbers are not one table."""
    seen: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for run_id in run_ids:
        key = tuple(sorted((row.task, row.instances) for row in run_splits(store, run_id)))
        seen.setdefault(key, []).append(run_id)
    if len(seen) <= 1:
        return
    groups = "; ".join(f"{', '.join(ids)}: " + (", ".join(f"{task} {fp}" for task, fp in key) or "not recorded")
                       for key, ids in seen.items())
    message = f"these runs were scored on different instances (task and instance fingerprints): {groups}"
    if refuse:
        raise ConfigError(message + " (add --allow-mixed-instances to put them in one table anyway)")
    Console(stderr=True, highlight=False).print(f"warning: {message}", markup=False)
