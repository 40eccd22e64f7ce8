"""Commands that start, continue and list runs: run, resume, replay, runs, tasks."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

from selftaught import app
from selftaught.config import RunConfig, load_toml
from selftaught.errors import ConfigError
from selftaught.experiments.cost import bound
from selftaught.lm.bundled import default_model, find_model
from selftaught.lm.registry import default_spec
from selftaught.progress import ProgressView, verdict
from selftaught.store import DB_NAME, RunStore
from selftaught.store.runstore import RunRow
from selftaught.store.splits import default_secret, set_default_secret
from selftaught.tasks import get_task
from selftaught.tasks import list_tasks as installed_tasks
from selftaught.tasks.registry import describe_task
from selftaught.tasks.secret import SplitSecret

__all__ = ["config_from", "list_runs", "list_tasks", "replay", "resume", "run", "secret"]


def config_from(args: argparse.Namespace, env: dict[str, str]) -> RunConfig:
    """The run config: defaults, then the TOML file, then the flags."""
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
        max_repeats=_pick(args.max_repeats, base.max_repeats),
        scoring=_pick(args.scoring, base.scoring),
        secret_file=_pick(args.secret_file, base.secret_file),
        lm=dataclasses.replace(
            base.lm,
            spec=lm_spec,
            max_tokens=_pick(args.max_completion_tokens, base.lm.max_tokens),
            max_cost_usd=_pick(args.max_cost_usd, base.lm.max_cost_usd),
            max_total_tokens=_pick(args.max_tokens, base.lm.max_total_tokens),
            max_calls=_pick(args.max_lm_calls, base.lm.max_calls),
            manual_timeout_s=_pick(getattr(args, "manual_timeout", None), base.lm.manual_timeout_s),
        ),
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
            executor=_pick(args.executor, base.sandbox.executor),
            ray_address=_pick(args.ray_address, base.sandbox.ray_address),
        ),
    )


def _pick(flag: Any, default: Any) -> Any:
    return default if flag is None else flag


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    config = config_from(args, env)
    task = get_task(config.task, scoring=config.scoring)
    prices = app.price_table(config)
    if args.dry_run:
        found = bound("run", config, [task], prices)
        print(json.dumps({"dry_run": found.to_json()}) if args.json else "\n".join(found.lines()))
        return 0
    view = ProgressView(config.iterations)
    if not args.lm:
        view.line(f"language model: {config.lm.spec}{_local_note(config.lm.spec)}; choose another with --lm")
    headline = bound("run", config, [task], prices).headline()
    if config.lm.spec.startswith("manual:") and config.budgets.improver_timeout_s < config.lm.manual_timeout_s:
        view.line(f"note: each improver run still ends after --improver-timeout "
                  f"{config.budgets.improver_timeout_s:g} s, waits for answers included; raise it to answer by hand")
    with view:  # the bound comes first once the run exists (a missing key is one line, nothing else)
        summary = app.start_run(config, args.runs_dir, env, view.iteration, view.line, view.record,
                                on_created=lambda run_id: view.line(headline), on_open=view.watch)
    return _report(summary, args.json, view)


def _local_note(spec: str) -> str:
    """What ``local`` / ``local:NAME`` stands for, said once at the start of a run."""
    prefix, _, rest = spec.partition(":")
    if prefix != "local":
        return ""
    model = find_model(rest) if rest else default_model()
    if model is None:
        return " (an embedded GGUF model, offline)"
    small = "; it shows the pipeline, not good results" if model.name == "smollm2-135m" else \
        "; a small model, so expect modest results"
    return f" = {model.title}, embedded and offline{small}"


def resume(args: argparse.Namespace, env: dict[str, str]) -> int:
    store = _store(args)
    row = store.get_run(args.run_id)
    caps = {name: value for name, value in (("max_cost_usd", args.max_cost_usd), ("max_total_tokens", args.max_tokens),
                                            ("max_calls", args.max_lm_calls)) if value is not None}
    if row.kind != "stop":
        _check_again(store, row, "resume")
        if row.status == "finished":
            raise ConfigError(f"run {row.id} ({row.kind}) finished; nothing to resume (selftaught replay {row.id} "
                              "repeats it offline)")
        if row.kind == "experiment":
            from selftaught.cli.experiment import resume_experiment

            return resume_experiment(args, env)
        from selftaught.cli.experiments import run_kind

        config = app.resumed_config(store, row.id, caps)
        return run_kind(row.kind, config, args, env, store.invocation(row.id), run_id=row.id)
    view = ProgressView(int(row.config.get("iterations", 0)))
    with view:
        summary = app.resume_run(args.run_id, args.runs_dir, env, view.iteration, view.line, view.record,
                                 caps=caps, on_open=view.watch)
    return _report(summary, args.json, view)


def replay(args: argparse.Namespace, env: dict[str, str]) -> int:
    store = _store(args)
    row = store.get_run(args.run_id)
    if row.kind != "stop":
        _check_again(store, row, "replay")  # refused before anything is stored
    if row.kind == "experiment":
        from selftaught.cli.experiment import replay_experiment

        return replay_experiment(args, env)
    config = RunConfig.from_dict(row.config)
    config = dataclasses.replace(
        config,
        lm=dataclasses.replace(config.lm, spec=f"replay:{args.run_id}"),
        sandbox=dataclasses.replace(
            config.sandbox,
            executor=_pick(args.executor, config.sandbox.executor),
            ray_address=_pick(args.ray_address, config.sandbox.ray_address),
        ),
    )
    if row.kind != "stop":
        from selftaught.cli.experiments import run_kind

        _stderr_line(f"replaying {row.kind} run {args.run_id} offline from its recorded LM responses")
        invocation = {key: value for key, value in store.invocation(row.id).items() if key != "csv"}  # keep files
        return run_kind(row.kind, config, args, env, invocation, secret_of=args.run_id)
    view = ProgressView(config.iterations)
    view.line(f"replaying {args.run_id} offline from its recorded LM responses")
    with view:
        summary = app.start_run(config, args.runs_dir, env, view.iteration, view.line, view.record,
                                secret_of=args.run_id, on_open=view.watch)
    return _report(summary, args.json, view)


def _report(summary: app.RunSummary, as_json: bool, view: ProgressView) -> int:
    if as_json:
        print(json.dumps(summary.to_json()))
    else:
        steps = [row.t for row in summary.iterations]
        done = "no step" if not steps else "seed step 0 only" if steps == [0] else \
            f"seed step 0 + {len([t for t in steps if t > 0])} of {view.total} steps"
        view.line(f"run {summary.run_id} {summary.status}: {done}, {summary.usage_line()}")
        view.line(f"result: {verdict(summary.iterations, view.initial())}")
    if summary.message:
        view.line(summary.message)
    return 0


AGAIN_KINDS = ("stop", "improve", "score", "transfer", "baseline", "experiment")
"""Run kinds ``replay`` and ``resume`` can do again."""


def _check_again(store: RunStore, row: RunRow, what: str) -> None:
    """Refuse (one line) a run that cannot be done again: an unknown kind, or stored without its invocation."""
    if row.kind not in AGAIN_KINDS:
        raise ConfigError(f"cannot {what} a {row.kind} run: {what} works for {', '.join(AGAIN_KINDS)} runs")
    if not store.invocation(row.id):
        raise ConfigError(f"cannot {what} {row.kind} run {row.id}: it was recorded by an older selftaught that did "
                          f"not store what the command was asked to do")


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr)


def _store(args: argparse.Namespace) -> RunStore:
    if not (args.runs_dir / DB_NAME).exists():
        raise ConfigError(f"no run store in {args.runs_dir} (use --runs-dir)")
    return RunStore.in_dir(args.runs_dir)


def list_runs(args: argparse.Namespace, env: dict[str, str]) -> int:
    store = _store(args)
    rows = []
    for row in store.list_runs():
        steps = store.iterations(row.id)
        best = max((s.val for s in steps if s.accepted and s.val is not None), default=None)
        rows.append({"run_id": row.id, "kind": row.kind, "status": row.status, "task": row.task, "lm": row.lm,
                     "steps": len(steps), "last_step": steps[-1].t if steps else None,
                     "iterations": row.config.get("iterations"), "best_val": best})
    if args.json:
        print(json.dumps(rows))
    for item in [] if args.json else rows:
        best_text = "-" if item["best_val"] is None else f"{item['best_val']:.3f}"
        # steps and best val belong to STOP runs; other kinds keep their results in their own tables
        step = "-" if item["last_step"] is None else f"{item['last_step']}/{item['iterations']}"
        loop = f"  step={step}  best_val={best_text}" if item["kind"] == "stop" else ""
        print(f"{item['run_id']}  {item['kind']:<10}  {item['status']:<11}  task={item['task']}  lm={item['lm']}{loop}")
    interrupted = [item["run_id"] for item in rows if item["status"] == "interrupted"]
    if interrupted and not args.json:
        print(f"interrupted: the broker died; continue with: selftaught resume {interrupted[-1]}")
    return 0


def list_tasks(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Every task; the built-ins with their parameters (paper values) and presets."""
    rows = [describe_task(name) for name in installed_tasks()]
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        if not row["presets"]:
            print(row["name"])
            continue
        params = ",".join(f"{key}={value!r}" for key, value in row["params"].items())
        presets = "; ".join(f"{name} ({','.join(f'{k}={v!r}' for k, v in changes.items()) or 'the defaults'})"
                            for name, changes in row["presets"].items())
        print(f"{row['name']}:{params}\n    presets: {presets}")
    return 0


def secret(args: argparse.Namespace, env: dict[str, str]) -> int:
    """``show`` the store's split secret fingerprint, ``export`` it to a file, ``import`` one as the default."""
    if args.action == "import":
        if args.file is None:
            raise ConfigError("secret import needs the FILE to read")
        imported = SplitSecret.from_file(args.file)
        set_default_secret(RunStore.in_dir(args.runs_dir), imported.fingerprint, imported.hex(), "imported")
        print(f"split secret {imported.fingerprint} is now the default of {args.runs_dir}")
        return 0
    store = RunStore.in_dir(args.runs_dir)
    fresh = SplitSecret.new()
    fingerprint, text = default_secret(store, (fresh.fingerprint, fresh.hex()))
    if args.action == "show":
        print(fingerprint)
        return 0
    if args.file is None:
        raise ConfigError("secret export needs a FILE to write (the secret is never printed)")
    try:
        descriptor = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create {args.file}: {exc.strerror} (it must not exist yet)") from exc
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")
    print(f"split secret {fingerprint} written to {args.file}; share it only with whom you compare results")
    return 0
