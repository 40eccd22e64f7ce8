"""Commands that start, continue and list runs: run, resume, replay, runs, tasks."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from selftaught import app
from selftaught.config import RunConfig, load_toml
from selftaught.errors import ConfigError
from selftaught.lm.registry import default_spec
from selftaught.progress import ProgressView
from selftaught.store import DB_NAME, RunStore
from selftaught.tasks import list_tasks as installed_tasks

__all__ = ["config_from", "list_runs", "list_tasks", "replay", "resume", "run"]


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
        lm=dataclasses.replace(
            base.lm,
            spec=lm_spec,
            max_tokens=_pick(args.max_completion_tokens, base.lm.max_tokens),
            max_cost_usd=_pick(args.max_cost_usd, base.lm.max_cost_usd),
            max_total_tokens=_pick(args.max_tokens, base.lm.max_total_tokens),
            max_calls=_pick(args.max_lm_calls, base.lm.max_calls),
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
    view = ProgressView(config.iterations)
    if not args.lm:
        note = " (the embedded offline model: it shows the pipeline, not good results)" \
            if config.lm.spec == "local" else ""
        view.line(f"language model: {config.lm.spec}{note}; choose another with --lm")
    with view:
        summary = app.start_run(config, args.runs_dir, env, view.iteration, view.line, view.record)
    return _report(summary, args.json, view)


def resume(args: argparse.Namespace, env: dict[str, str]) -> int:
    row = _store(args).get_run(args.run_id)
    view = ProgressView(int(row.config.get("iterations", 0)))
    caps = {name: value for name, value in (("max_cost_usd", args.max_cost_usd), ("max_total_tokens", args.max_tokens),
                                            ("max_calls", args.max_lm_calls)) if value is not None}
    with view:
        summary = app.resume_run(args.run_id, args.runs_dir, env, view.iteration, view.line, view.record,
                                 caps=caps)
    return _report(summary, args.json, view)


def replay(args: argparse.Namespace, env: dict[str, str]) -> int:
    row = _store(args).get_run(args.run_id)
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
    view = ProgressView(config.iterations)
    view.line(f"replaying {args.run_id} offline from its recorded LM responses")
    with view:
        summary = app.start_run(config, args.runs_dir, env, view.iteration, view.line, view.record)
    return _report(summary, args.json, view)


def _report(summary: app.RunSummary, as_json: bool, view: ProgressView) -> int:
    if as_json:
        print(json.dumps(summary.to_json()))
    else:
        view.line(
            f"run {summary.run_id} {summary.status}: {len(summary.iterations)} steps, "
            f"{summary.lm_calls} LM calls, {summary.completions} completions, ${summary.cost_usd:.4f}"
        )
    if summary.message:
        view.line(summary.message)
    return 0


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
        rows.append({"run_id": row.id, "status": row.status, "task": row.task, "lm": row.lm, "steps": len(steps),
                     "best_val": best})
    if args.json:
        print(json.dumps(rows))
    for item in [] if args.json else rows:
        best_text = "-" if item["best_val"] is None else f"{item['best_val']:.3f}"
        print(f"{item['run_id']}  {item['status']:<11}  task={item['task']}  lm={item['lm']}  "
              f"steps={item['steps']}  best_val={best_text}")
    interrupted = [item["run_id"] for item in rows if item["status"] == "interrupted"]
    if interrupted and not args.json:
        print(f"interrupted: the broker died; continue with: selftaught resume {interrupted[-1]}")
    return 0


def list_tasks(args: argparse.Namespace, env: dict[str, str]) -> int:
    print("\n".join(installed_tasks()))
    return 0
