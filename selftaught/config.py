"""Frozen, typed run configuration: plain data with units in the names.

A ``RunConfig`` is stored with each run (``to_dict``) and read back on resume (``from_dict``);
``from_dict`` rejects unknown keys and wrong types with a ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from selftaught.errors import ConfigError

__all__ = [
    "Budgets",
    "LMConfig",
    "RunConfig",
    "SandboxConfig",
    "load_toml",
]

Acceptance = Literal["sequential", "best", "paper", "paired"]
Executor = Literal["local", "ray"]
Scoring = Literal["normalised", "reference"]


@dataclass(frozen=True)
class Budgets:
    """Per improver run, counted in the broker (the paper's defaults).

    Attributes:
        lm_calls: LM calls (``prompt`` or ``batch_prompt``) one improver run may make.
        responses_per_call: samples one LM call may ask for (``max_responses_per_call``).
        utility_calls: utility calls one improver run may make (n*m+1 in the paper).
        improver_timeout_s: wall time of one improver run, LM waits included.
    """

    lm_calls: int = 4
    responses_per_call: int = 6
    utility_calls: int = 25
    improver_timeout_s: float = 900.0


@dataclass(frozen=True)
class LMConfig:
    """How LM calls are made.

    Attributes:
        spec: backend and model, e.g. ``openai:gpt-4o-mini`` or ``local``.
        max_tokens: completion tokens per sample. 4096 by default: improvers a strong model writes
            ran to about 1,250 tokens, past the paper's 1024, and a cut-off improver scores 0.
        timeout_s: one HTTP request's timeout.
        max_retries: retries on 429/5xx/timeouts before the call fails.
        concurrency: LM requests in flight at once.
        max_cost_usd: run-level dollar cap (0 = none); the run stops cleanly when reached.
        max_total_tokens: run-level token cap, prompt plus completion (0 = none).
        max_calls: run-level cap on LM requests (0 = none).
        prices_file: TOML file adding or overriding model prices (``[prices."MODEL"]``).
        manual_timeout_s: how long the ``manual`` backend waits for a person to answer one request.
    """

    spec: str = "local"
    max_tokens: int = 4096
    timeout_s: float = 120.0
    max_retries: int = 4
    concurrency: int = 4
    max_cost_usd: float = 0.0
    max_total_tokens: int = 0
    max_calls: int = 0
    prices_file: str = ""
    manual_timeout_s: float = 43_200.0


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of every sandboxed process.

    Attributes:
        memory_mb: address-space limit (numpy needs at least 256).
        file_size_mb: largest file a sandbox may write.
        max_processes: processes per sandbox uid (fork-bomb bound).
        open_files: file descriptors per process.
        output_limit_kb: stdout/stderr kept per job; the rest is dropped.
        tmpfs_mb: size of the private /tmp and scratch directory.
        workers: warm worker processes (with ``executor="ray"``: Ray actors, one sandbox each).
        strict: refuse to run when the strongest isolation (bubblewrap) is unavailable.
        executor: ``local`` (this machine's worker pool) or ``ray`` (a Ray cluster; extra ``ray``).
        ray_address: the cluster to join (``auto``, ``ray://HOST:10001``); empty starts a local one.
        max_source_kb: largest solution or improver source the broker runs or stores; a bigger
            one scores 0 (a solution), fails (an improver) or is refused (``utility`` argument).
        max_result_kb: largest single message a job sends (one call's result, one proxy call);
            over it the result fails or the proxy call raises ``ProxyError`` in the improver.
        max_job_mb: bytes one job may send the broker in all; past it the job is killed.
        max_job_values: JSON values (containers, items) one job's messages may hold in all,
            which bounds what parsing them costs the broker (at most about 64 bytes a value, measured).
        max_store_growth_mb: text one improver run may add to the run store (prompts, solutions
            sent to ``utility``); past it its proxy calls raise ``ProxyError``.
        job_cgroups: give each job a cgroup (as root, where the host allows) so ``memory_mb`` and
            ``max_processes`` bound its whole process tree; false keeps the per-process rlimits
            only, which saves the kernel's cgroup move per job (see the README's trust model).
    """

    memory_mb: int = 1024
    file_size_mb: int = 16
    max_processes: int = 64
    open_files: int = 256
    output_limit_kb: int = 64
    tmpfs_mb: int = 64
    workers: int = 2
    strict: bool = False
    executor: Executor = "local"
    ray_address: str = ""
    max_source_kb: int = 512
    max_result_kb: int = 4096
    max_job_mb: int = 64
    max_job_values: int = 2_000_000
    max_store_growth_mb: int = 64
    job_cgroups: bool = True


@dataclass(frozen=True)
class RunConfig:
    """One STOP run.

    Attributes:
        task: downstream task spec: a name with optional parameters (``lpn``, ``lpn:preset=hard``,
            ``lpn:bits=24,noise=0.1``) or the path of a task file.
        iterations: self-improvement steps T.
        repeats: improver runs per meta-utility estimate (fresh budgets each).
        seed: seeds sampling order and anything random in the broker.
        accept: ``sequential`` (default) runs incumbent and candidate on the same seeded val repeats,
            ``repeats`` pairs at a time up to ``max_repeats``, and adopts the candidate once the one-sided
            lower bound of the mean paired difference is above 0 (false adoptions at most 5% over all
            looks), rejecting it when the mean difference is <= 0 or at the cap; ``paired`` is the same
            with ``repeats`` pairs and one look at 95%; ``best`` adopts a candidate whose val mean beats
            the incumbent's val from its adoption; ``paper`` adopts it unless it scored 0 or failed.
        max_repeats: the most paired val repeats the ``sequential`` rule may run per step (it never
            runs fewer than ``repeats``).
        scoring: ``normalised`` (the fixed scorers, every task in [0, 1]) or ``reference`` (as the
            paper's reference code scored: its scales, directions and floors).
        secret_file: a file holding the split secret to draw val/test instances with (shared on
            purpose, e.g. by a group comparing results); empty: the run store's own secret.
        lm, budgets, sandbox: see their classes.
    """

    task: str = "lpn"
    iterations: int = 2
    repeats: int = 3
    seed: int = 0
    accept: Acceptance = "sequential"
    max_repeats: int = 12
    scoring: Scoring = "normalised"
    secret_file: str = ""
    lm: LMConfig = field(default_factory=LMConfig)
    budgets: Budgets = field(default_factory=Budgets)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)

    def __post_init__(self) -> None:
        _check_positive(self, ("iterations", "repeats", "max_repeats"), allow_zero={"iterations"})
        _check_positive(self.budgets, ("lm_calls", "responses_per_call", "utility_calls", "improver_timeout_s"))
        _check_positive(self.lm, ("max_tokens", "timeout_s", "concurrency", "manual_timeout_s"))
        _check_positive(self.lm, ("max_cost_usd", "max_total_tokens", "max_calls", "max_retries"),
                        allow_zero={"max_cost_usd", "max_total_tokens", "max_calls", "max_retries"})
        _check_positive(self.sandbox, ("memory_mb", "file_size_mb", "max_processes", "open_files", "workers",
                                       "max_source_kb", "max_result_kb", "max_job_mb", "max_job_values",
                                       "max_store_growth_mb"))
        if self.sandbox.max_result_kb > 64 * 1024:
            raise ConfigError("sandbox max_result_kb may be at most 65536 (the wire's 64 MiB frame limit)")
        if self.accept not in get_args(Acceptance):
            raise ConfigError(f"accept must be one of {', '.join(get_args(Acceptance))}, not {self.accept!r}")
        if self.scoring not in get_args(Scoring):
            raise ConfigError(f"scoring must be one of {', '.join(get_args(Scoring))}, not {self.scoring!r}")
        if self.sandbox.executor not in get_args(Executor):
            raise ConfigError(f"executor must be one of {', '.join(get_args(Executor))}, not {self.sandbox.executor!r}")
        if self.sandbox.memory_mb < 256:
            raise ConfigError("sandbox memory_mb must be at least 256 (numpy needs it)")

    def to_dict(self) -> dict[str, Any]:
        """The config as nested plain data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Rebuild a config from ``to_dict`` output or a TOML table; unknown keys are errors."""
        config: RunConfig = _build(cls, data, "config")
        return config


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML config file into plain data (validated later by ``RunConfig.from_dict``)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _check_positive(obj: object, names: tuple[str, ...], allow_zero: set[str] | None = None) -> None:
    for name in names:
        value = getattr(obj, name)
        floor_ok = value >= 0 if allow_zero and name in allow_zero else value > 0
        if not floor_ok:
            raise ConfigError(f"{name} must be {'>= 0' if allow_zero and name in allow_zero else '> 0'}, not {value}")


def _build(cls: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table, not {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} in {where}: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{where}.{name}")
        else:
            values[name] = _coerce(hint, value, f"{where}.{name}")
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    choices = get_args(hint)
    if choices and value in choices:
        return value
    raise ConfigError(f"{where} must be one of {', '.join(map(str, choices))}, not {value!r}")
