"""Composition root: wires the store, sandbox, LM stack and broker of a run, and runs STOP.

This is the one place (with the CLI) that reads the environment and files. ``open_session``
gives any run-shaped job (a STOP run, a transfer table, an experiment) a broker whose LM calls
are cached in the run (replayable, resumable), metered against run-level caps and recorded; its
status in the store ends as finished / stopped / failed whatever happens. ``start_run`` and
``resume_run`` drive the STOP loop in such a session.

Every session holds a split secret (``session.secret``): the one the run used before (resume),
the one a replayed run used, the file named by ``secret_file``, or the store's own. Tasks come from
``session.task(spec)``, which binds the secret and the configured scoring and records the task's
full parameter set and a fingerprint of its instances in the run (``store.splits``).

Ctrl-C leaves a session as ``RunInterrupted``, which names the run. Before step 0 a STOP run scores
the task's initial solution on val and test (tags ``initial/<split>``), the u(s) its progress lines
and verdict compare against.
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
from selftaught.errors import ConfigError, RunCapExceeded, SelftaughtError, TaskError
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
from selftaught.store.splits import (
    RunSplit,
    default_secret,
    predates_splits,
    record_split,
    remember_secret,
    run_splits,
    secret_by_fingerprint,
)
from selftaught.tasks import get_task
from selftaught.tasks.base import Task
from selftaught.tasks.common import SPLITS
from selftaught.tasks.secret import SplitSecret, instances_fingerprint

__all__ = [
    "RunInterrupted",
    "RunSummary",
    "RunSession",
    "open_session",
    "price_table",
    "resume_run",
    "resumed_config",
    "run_secret",
    "start_run",
    "summarize",
]

CAP_FIELDS = ("max_cost_usd", "max_total_tokens", "max_calls")

Notify = Callable[[str], None]
OnIteration = Callable[[Iteration], None]
OnRecord = Callable[[str], None]  # called with "lm_call", "evaluation", "program", "event" or "truncated"
OnOpen = Callable[[str, str], None]  # called with the run id and the store's path once the run exists
LMFactory = Callable[[RunConfig, Mapping[str, str]], LanguageModel]
SandboxFactory = Callable[[RunConfig], Sandbox]


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or stopped) run reports."""

    run_id: str
    status: str
    iterations: tuple[Iteration, ...]
    lm_calls: int  # requests sent to the model (cache hits not included)
    completions: int
    cost_usd: float
    message: str = ""
    cached_calls: int = 0  # requests answered from the run's own cache (after resume) or a recording
    truncated: int = 0  # samples cut off at the completion limit
    estimated_calls: int = 0  # requests whose token usage the server did not report (estimated)
    model: str = ""

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
            "cached_calls": self.cached_calls,
            "completions": self.completions,
            "truncated": self.truncated,
            "estimated_usage_calls": self.estimated_calls,
            "cost_usd": self.cost_usd,
            "cost_is_estimate": True,
            "model": self.model,
            "message": self.message,
        }

    def usage_line(self) -> str:
        """LM use in one line: new requests and cache hits apart, truncated samples, cost (an estimate)."""
        cached = f" (+{self.cached_calls} answered from the cache)" if self.cached_calls else ""
        estimated = f", usage of {self.estimated_calls} estimated" if self.estimated_calls else ""
        return (f"{self.lm_calls} LM calls{cached}, {self.completions} completions, {self.truncated} truncated, "
                f"${self.cost_usd:.4f} (estimate{estimated})")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: a ``KeyboardInterrupt`` that knows which run (and kind) it stopped."""

    def __init__(self, run_id: str, kind: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        self.kind = kind


@dataclass(frozen=True)
class RunSession:
    """A run open for work, as ``open_session`` yields it: its store, id, config, split secret and wired broker."""

    store: RunStore
    run_id: str
    config: RunConfig
    broker: Broker
    recorder: RunRecorder
    secret: SplitSecret | None  # None: a run made before secret splits, whose val/test were public

    def task(self, spec: str) -> Task:
        """The task ``spec`` names, bound to this run's secret and scoring, recorded in the run.

        A run that recorded the task before (a resumed run) must get the very same instances.
        """
        task = get_task(spec, self.secret, self.config.scoring)
        params = dict(getattr(task, "params", {}))
        fingerprint = instances_fingerprint((split, task.instances(split)) for split in SPLITS)
        wanted = RunSplit(str(getattr(task, "spec", spec)), params, self.config.scoring,
                          self.secret.fingerprint if self.secret and getattr(task, "secret", None) else "",
                          fingerprint)
        stored = record_split(self.store, self.run_id, wanted)
        if stored != wanted:
            raise TaskError(f"run {self.run_id} scored {stored.task} on instances {stored.instances} "
                            f"(secret {stored.secret or 'none'}); they are now {wanted.instances} "
                            f"(secret {wanted.secret or 'none'}): the task or its code changed")
        return task


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
    invocation: Mapping[str, Any] | None = None,
    on_created: Callable[[str], None] = lambda run_id: None,
    notify: Notify = lambda line: None,
    on_record: OnRecord = lambda kind: None,
    make_lm: LMFactory = default_lm,
    make_sandbox: SandboxFactory = default_sandbox,
    secret_of: str | None = None,
    on_open: OnOpen = lambda run_id, path: None,
) -> Iterator[RunSession]:
    """A new run of ``kind`` (or the stored ``run_id``) with a broker; records how it ended.

    ``secret_of`` names a run whose split secret this one must use (``replay``).
    ``invocation`` (JSON-safe) is what the command was asked to do; it is stored with a new run so
    ``replay`` and ``resume`` can do it again.

    A run-level cap (``RunCapExceeded`` from the meter) ends the block cleanly with status
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
        if invocation:
            store.set_invocation(run_id, dict(invocation))
        on_created(run_id)
        notify(f"run {run_id} in {store.path}")
    else:
        store.set_status(run_id, "running")
    on_open(run_id, store.path)
    recorder = RunRecorder(store, run_id, on_record)
    store.claim(run_id)  # readers tell a live run from one whose broker died by pid, host and heartbeat
    heartbeat = Heartbeat(lambda: store.beat(run_id)).start()
    status, message = "failed", ""
    try:
        secret = run_secret(store, config, secret_of or run_id)
        metered = _metered(CachingLM(lm, RunCache(store, run_id)), config, store, run_id)
        sandbox = make_sandbox(config)
        try:
            store.set_layers(run_id, list(sandbox.layers))
            broker = Broker(sandbox, metered, recorder, config.budgets, config.lm.max_tokens,
                            config.sandbox.workers, config.seed,
                            sizes=SizeLimits.from_config(config.sandbox))
            yield RunSession(store, run_id, config, broker, recorder, secret)
        finally:
            sandbox.close()
        status = "finished"
    except RunCapExceeded as exc:  # a run-level cap: a clean stop, everything so far is kept
        status, message = "stopped", f"{exc}; raise the cap and run: selftaught resume {run_id}"
    except KeyboardInterrupt as exc:
        status, message = "stopped", f"interrupted; resume with: selftaught resume {run_id}"
        raise RunInterrupted(run_id, kind) from exc
    except SelftaughtError as exc:
        message = str(exc)
        raise
    finally:
        heartbeat.stop()
        store.set_status(run_id, status, message)


def run_secret(store: RunStore, config: RunConfig, run_id: str | None = None) -> SplitSecret | None:
    """The split secret a run uses: the one ``run_id`` recorded, else ``config.secret_file``'s,
    else the store's own (made at random on first use). Every secret used is kept in the store.

    ``None`` for a run that scored before secret splits existed: it goes on (or is replayed) on the
    public splits it started with, so its numbers stay comparable with themselves.
    """
    if run_id and predates_splits(store, run_id):
        return None
    recorded = {row.secret for row in run_splits(store, run_id)} - {""} if run_id else set()
    if len(recorded) > 1:
        raise ConfigError(f"run {run_id} recorded several split secrets: {', '.join(sorted(recorded))}")
    if recorded:
        fingerprint = recorded.pop()
        return SplitSecret.from_hex(secret_by_fingerprint(store, fingerprint), f"split secret {fingerprint}")
    if config.secret_file:
        secret = SplitSecret.from_file(Path(config.secret_file))
        remember_secret(store, secret.fingerprint, secret.hex(), f"file {config.secret_file}")
        return secret
    fresh = SplitSecret.new()
    fingerprint, text = default_secret(store, (fresh.fingerprint, fresh.hex()))
    return SplitSecret.from_hex(text, f"split secret {fingerprint}")


def start_run(
    config: RunConfig,
    runs_dir: Path,
    env: Mapping[str, str],
    on_iteration: OnIteration = lambda row: None,
    notify: Notify = lambda line: None,
    on_record: OnRecord = lambda kind: None,
    make_lm: LMFactory = default_lm,
    make_sandbox: SandboxFactory = default_sandbox,
    secret_of: str | None = None,
    on_created: Callable[[str], None] = lambda run_id: None,
    on_open: OnOpen = lambda run_id, path: None,
) -> RunSummary:
    """Create a STOP run in ``runs_dir`` and run it to the end.

    ``secret_of``: see ``open_session``; ``on_created`` gets the new run's id first.
    """
    get_task(config.task, scoring=config.scoring)  # a bad spec fails before anything is stored
    with open_session(config, runs_dir, env, notify=notify, on_record=on_record, make_lm=make_lm,
                      make_sandbox=make_sandbox, secret_of=secret_of, on_created=on_created,
                      on_open=on_open) as session:
        _loop(session, session.task(config.task), on_iteration)
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
    on_open: OnOpen = lambda run_id, path: None,
) -> RunSummary:
    """Continue ``run_id`` after its last finished step, with the config it was started with.

    ``caps`` may raise (or lower) the run-level LM caps (``LMConfig`` fields ``max_cost_usd``,
    ``max_total_tokens``, ``max_calls``) of a run that stopped at one; the new values are stored.
    """
    store = RunStore.in_dir(runs_dir)
    row = store.get_run(run_id)
    if row.kind != "stop":
        raise ConfigError(f"run {run_id} is a {row.kind} run; resume_run continues STOP runs")
    config = resumed_config(store, run_id, caps)
    get_task(config.task, scoring=config.scoring)
    done = store.iterations(run_id)
    notify(f"resuming run {run_id} after step {done[-1].t}" if done else f"resuming run {run_id} from the start")
    with open_session(config, runs_dir, env, run_id=run_id, on_record=on_record, make_lm=make_lm,
                      make_sandbox=make_sandbox, on_open=on_open) as session:
        _loop(session, session.task(config.task), on_iteration)
    return summarize(store, run_id)


def resumed_config(store: RunStore, run_id: str, caps: Mapping[str, float | int] | None = None) -> RunConfig:
    """The stored config of ``run_id`` with new run-level ``caps`` (stored too), for resuming it."""
    config = RunConfig.from_dict(store.get_run(run_id).config)
    if caps:
        unknown = set(caps) - set(CAP_FIELDS)
        if unknown:
            raise ConfigError(f"not a run-level cap: {', '.join(sorted(unknown))}")
        config = RunConfig.from_dict({**config.to_dict(), "lm": {**config.to_dict()["lm"], **caps}})
        store.set_config(run_id, config.to_dict())
    return config


def _loop(session: RunSession, task: Any, on_iteration: OnIteration) -> None:
    store, run_id = session.store, session.run_id

    def after_step(row: Iteration) -> None:
        try:
            scan_run(store, run_id)
        except Exception as exc:  # a scanner bug must not end a run; it is recorded instead
            store.add_event(run_id, "scan_failed", f"{type(exc).__name__}: {exc}")
        on_iteration(row)

    history = store.iterations(run_id)
    if not history:  # u(s), the initial solution's score, for every progress line and the verdict
        for split in ("val", "test"):
            session.broker.evaluate(task.initial_solution, task, split, f"initial/{split}")
    run_loop(session.broker, task, session.config, session.recorder, history, after_step)


def _replay_lm(store: RunStore, spec: str) -> LanguageModel:
    """``replay:RUN_ID``: answers only from the responses recorded by that run."""
    source = store.get_run(spec.split(":", 1)[1])
    return ReplayLM(RunCache(store, source.id), source.lm)


def _metered(lm: LanguageModel, config: RunConfig, store: RunStore, run_id: str) -> LanguageModel:
    """Count calls, tokens and dollars against the run-level caps, including earlier sessions."""
    settings = config.lm
    prices = price_table(config)
    caps = Caps(
        max_cost_usd=settings.max_cost_usd or None,
        max_tokens=settings.max_total_tokens or None,
        max_lm_calls=settings.max_calls or None,
    )
    totals = store.lm_totals(run_id)
    spent = Usage(calls=int(totals["calls"]), prompt_tokens=int(totals["prompt_tokens"]),
                  completion_tokens=int(totals["completion_tokens"]), cost_usd=float(totals["cost_usd"]))
    return MeteredLM(lm, Meter(caps, prices, spent))


def price_table(config: RunConfig) -> PriceTable:
    """The built-in prices, refreshed from ``lm.prices_file`` when one is set."""
    prices = PriceTable()
    return prices.with_toml(Path(config.lm.prices_file)) if config.lm.prices_file else prices


def summarize(store: RunStore, run_id: str) -> RunSummary:
    """The summary of a stored run."""
    run = store.get_run(run_id)
    totals = store.lm_totals(run_id)
    return RunSummary(run_id, run.status, tuple(store.iterations(run_id)), int(totals["new_calls"]),
                      int(totals["completions"]), float(totals["cost_usd"]), run.message,
                      int(totals["cached_calls"]), int(totals["truncated"]), int(totals["estimated_calls"]), run.lm)
