"""Composition root: wires the store, sandbox, LM stack and broker of a run, and runs STOP.

This is the one place (with the CLI) that reads the environment and files. ``open_session``
gives any run-shaped job (a STOP run, a transfer table, an experiment) a broker whose LM calls
are cached in the run (replayable, resumable), metered against run-level caps and recorded; its
status in the store ends as finished / stopped / failed whatever happens. ``start_run`` and
``resume_run`` drive the STOP loop in such a session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftaught.broker import Broker
from selftaught.broker.boundary import SizeLimits
from selftaught.config import RunConfig
from selftaught.errors import BudgetExceeded, ConfigError, SelftaughtError
from selftaught.lm import CachingLM, Caps, Meter, MeteredLM, PriceTable, ReplayLM, Usage
from selftaught.lm.base import LanguageModel
from selftaught.lm.registry import get_lm
from selftaught.records import Iteration
from selftaught.safety import scan_run
from selftaught.sandbox import ForkServerSandbox
from selftaught.sandbox.base import Sandbox
from selftaught.stop import run_loop
from selftaught.store import RunCache, RunRecorder, RunStore
from selftaught.store.liveness import Heartbeat
from selftaught.tasks import get_task

__all__ = ["RunSummary", "Session", "open_session", "resume_run", "start_run", "summarize"]

CAP_FIELDS = ("max_cost_usd", "max_total_tokens", "max_calls")

Notify = Callable[[str], None]
OnIteration = Callable[[Iteration], None]
OnRecord = Callable[[str], None]  # called with "lm_call", "evaluation", "program" or "event"
LMFactory = Callable[[RunConfig, Mapping[str, str]], LanguageModel]
SandboxFactory = Callable[[RunConfig], Sandbox]


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or stopped) run reports."""

    run_id: str
    status: str
    iterations: tuple[Iteration, ...]
    lm_calls: int
    completions: int
    cost_usd: float
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "iterations": [
                {"t": row.t, "val": row.val, "val_se": row.val_se, "test": row.test, "test_se": row.test_se,
                 "accepted": row.accepted, "reason": row.reason}
                for row in self.iterations
            ],
            "lm_calls": self.lm_calls,
            "completions": self.completions,
            "cost_usd": self.cost_usd,
            "message": self.message,
        }


@dataclass(frozen=True)
class Session:
    """A run being worked on: its store, id, config and a fully wired broker."""

    store: RunStore
    run_id: str
    config: RunConfig
    broker: Broker
    recorder: RunRecorder


def default_lm(config: RunConfig, env: Mapping[str, str]) -> LanguageModel:
    """The configured model: ``get_lm`` with retries and a concurrency limit."""
    return get_lm(config.lm.spec, config.lm, env)


def default_sandbox(config: RunConfig) -> Sandbox:
    """This machine's fork-server pool, or sandboxes on Ray actors with ``executor = "ray"``."""
    if config.sandbox.executor == "ray":
        from selftaught.distributed import RaySandbox  # optional extra: import only when asked for

        return RaySandbox(config.sandbox)
    return ForkServerSandbox(config.sandbox)


@contextmanager
def open_session(
    config: RunConfig,
    runs_dir: Path,
    env: Mapping[str, str],
    *,
    kind: str = "stop",
    run_id: str | None = None,
    notify: Notify = lambda line: None,
    on_record: OnRecord = lambda kind: None,
    make_lm: LMFactory = default_lm,
    make_sandbox: SandboxFactory = default_sandbox,
) -> Iterator[Session]:
    """A new run of ``kind`` (or the stored ``run_id``) with a broker; records how it ended.

    A run-level cap (``BudgetExceeded`` from the meter) ends the block cleanly with status
    ``stopped``; any other error leaves status ``failed`` with its message and propagates.
    """
    if config.lm.spec.startswith("replay:"):
        store = RunStore.in_dir(runs_dir)
        lm = _replay_lm(store, config.lm.spec)
    else:
        lm = make_lm(config, env)  # before the store is touched: a missing key leaves nothing behind
        store = RunStore.in_dir(runs_dir)
    if run_id is None:
        run_id = store.create_run(config.task, lm.name, config.seed, config.to_dict(), [], kind)
        notify(f"run {run_id} in {store.path}")
    else:
        store.set_status(run_id, "running")
    recorder = RunRecorder(store, run_id, on_record)
    store.claim(run_id)  # readers tell a live run from one whose broker died by pid, host and heartbeat
    heartbeat = Heartbeat(lambda: store.beat(run_id)).start()
    status, message = "failed", ""
    try:
        metered = _metered(CachingLM(lm, RunCache(store, run_id)), config, store, run_id)
        sandbox = make_sandbox(config)
        try:
            store.set_layers(run_id, list(sandbox.layers))
            broker = Broker(sandbox, metered, recorder, config.budgets, config.lm.max_tokens,
                            config.sandbox.workers, config.seed,
                            sizes=SizeLimits.from_config(config.sandbox))
            yield Session(store, run_id, config, broker, recorder)
        finally:
            sandbox.close()
        status = "finished"
    except BudgetExceeded as exc:  # a run-level cap: a clean stop, everything so far is kept
        status, message = "stopped", f"{exc}; raise the cap and run: selftaught resume {run_id}"
    except KeyboardInterrupt:
        status, message = "stopped", f"interrupted; resume with: selftaught resume {run_id}"
        raise
    except SelftaughtError as exc:
        message = str(exc)
        raise
    finally:
        heartbeat.stop()
        store.set_status(run_id, status, message)


def start_run(
    config: RunConfig,
    runs_dir: Path,
    env: Mapping[str, str],
    on_iteration: OnIteration = lambda row: None,
    notify: Notify = lambda line: None,
    on_record: OnRecord = lambda kind: None,
    make_lm: LMFactory = default_lm,
    make_sandbox: SandboxFactory = default_sandbox,
) -> RunSummary:
    """Create a STOP run in ``runs_dir`` and run it to the end."""
    task = get_task(config.task)
    with open_session(config, runs_dir, env, notify=notify, on_record=on_record, make_lm=make_lm,
                      make_sandbox=make_sandbox) as session:
        _loop(session, task, on_iteration)
    return summarize(session.store, session.run_id)


def resume_run(
    run_id: str,
    runs_dir: Path,
    env: Mapping[str, str],
    on_iteration: OnIteration = lambda row: None,
    notify: Notify = lambda line: None,
    on_record: OnRecord = lambda kind: None,
    make_lm: LMFactory = default_lm,
    make_sandbox: SandboxFactory = default_sandbox,
    caps: Mapping[str, float | int] | None = None,
) -> RunSummary:
    """Continue ``run_id`` after its last finished step, with the config it was started with.

    ``caps`` may raise (or lower) the run-level LM caps (``LMConfig`` fields ``max_cost_usd``,
    ``max_total_tokens``, ``max_calls``) of a run that stopped at one; the new values are stored.
    """
    store = RunStore.in_dir(runs_dir)
    row = store.get_run(run_id)
    if row.kind != "stop":
        raise ConfigError(f"run {run_id} is a {row.kind} run; only STOP runs can be resumed")
    config = RunConfig.from_dict(row.config)
    if caps:
        unknown = set(caps) - set(CAP_FIELDS)
        if unknown:
            raise ConfigError(f"not a run-level cap: {', '.join(sorted(unknown))}")
        config = RunConfig.from_dict({**config.to_dict(), "lm": {**config.to_dict()["lm"], **caps}})
        store.set_config(run_id, config.to_dict())
    task = get_task(config.task)
    done = store.iterations(run_id)
    notify(f"resuming run {run_id} after step {done[-1].t}" if done else f"resuming run {run_id} from the start")
    with open_session(config, runs_dir, env, run_id=run_id, on_record=on_record, make_lm=make_lm,
                      make_sandbox=make_sandbox) as session:
        _loop(session, task, on_iteration)
    return summarize(store, run_id)


def _loop(session: Session, task: Any, on_iteration: OnIteration) -> None:
    store, run_id = session.store, session.run_id

    def after_step(row: Iteration) -> None:
        try:
            scan_run(store, run_id)
        except Exception as exc:  # a scanner bug must not end a run; it is recorded instead
            store.add_event(run_id, "scan_failed", f"{type(exc).__name__}: {exc}")
        on_iteration(row)

    run_loop(session.broker, task, session.config, session.recorder, store.iterations(run_id), after_step)


def _replay_lm(store: RunStore, spec: str) -> LanguageModel:
    """``replay:RUN_ID``: answers only from the responses recorded by that run."""
    source = store.get_run(spec.split(":", 1)[1])
    return ReplayLM(RunCache(store, source.id), source.lm)


def _metered(lm: LanguageModel, config: RunConfig, store: RunStore, run_id: str) -> LanguageModel:
    """Count calls, tokens and dollars against the run-level caps, including earlier sessions."""
    settings = config.lm
    prices = PriceTable()
    if settings.prices_file:
        prices = prices.with_toml(Path(settings.prices_file))
    caps = Caps(
        max_cost_usd=settings.max_cost_usd or None,
        max_tokens=settings.max_total_tokens or None,
        max_lm_calls=settings.max_calls or None,
    )
    totals = store.lm_totals(run_id)
    spent = Usage(calls=int(totals["calls"]), prompt_tokens=int(totals["prompt_tokens"]),
                  completion_tokens=int(totals["completion_tokens"]), cost_usd=float(totals["cost_usd"]))
    return MeteredLM(lm, Meter(caps, prices, spent))


def summarize(store: RunStore, run_id: str) -> RunSummary:
    """The summary of a stored run."""
    run = store.get_run(run_id)
    totals = store.lm_totals(run_id)
    return RunSummary(run_id, run.status, tuple(store.iterations(run_id)), int(totals["calls"]),
                      int(totals["completions"]), float(totals["cost_usd"]), run.message)
