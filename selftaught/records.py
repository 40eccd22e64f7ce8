"""Plain value records passed between the layers.

Every record is frozen and holds only JSON-safe data (str, int, float, bool, None, lists, dicts),
so it can be stored, sent to a sandbox or compared in a test without special handling.
Nothing here imports anything from the package.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "STARTUP_TIMEOUT_S",
    "WALL_FACTOR",
    "WALL_SLACK_S",
    "STALE_AFTER_S",
    "CallResult",
    "Clock",
    "Recorder",
    "Instance",
    "Iteration",
    "Job",
    "LMRequest",
    "LMResponse",
    "Outcome",
    "RemoteSpec",
    "Score",
    "FINISH_REASONS",
    "FinishReason",
    "Split",
    "broker_state",
]

Split = Literal["train", "val", "test"]
"""train: what an improver's utility sees; val: what the loop selects on; test: reported only."""


# --- language models -------------------------------------------------------------------------

FinishReason = Literal["stop", "length", "content_filter", "error"]
"""Why a sample ended: ``stop`` (the model finished), ``length`` (cut off at ``max_tokens``),
``content_filter`` (withheld by the provider), ``error`` (no text came back for it)."""

FINISH_REASONS: tuple[FinishReason, ...] = ("stop", "length", "content_filter", "error")


@dataclass(frozen=True)
class LMRequest:
    """One request to a language model: a system role, one user message, ``n`` samples.

    ``tag`` names the call site deterministically (e.g. ``t1/r0/c2``: iteration, repeat, call);
    the response cache keys on it with the sample index, so a replayed run gets the very same
    answers at the same places even when calls run concurrently.
    """

    system: str
    user: str
    n: int = 1
    temperature: float = 0.7
    max_tokens: int = 1024
    tag: str = ""


@dataclass(frozen=True)
class LMResponse:
    """The answer to one ``LMRequest``: exactly ``request.n`` texts, in order.

    ``finish_reasons`` holds one ``FinishReason`` per text (empty: the backend did not say, read
    as ``stop``). ``prompt_tokens`` includes ``cached_prompt_tokens`` (read from the provider's
    prompt cache, billed cheaper) and ``cache_write_tokens`` (written to it, billed dearer where the
    provider charges for that). ``usage_estimated`` is True when the server reported no usage and
    the token counts are estimates from the text lengths.
    """

    texts: tuple[str, ...]
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    cost_usd: float = 0.0
    finish_reasons: tuple[str, ...] = ()
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    usage_estimated: bool = False

    def finish_reason(self, index: int) -> str:
        """Why sample ``index`` ended (``stop`` when the backend did not say)."""
        return self.finish_reasons[index] if index < len(self.finish_reasons) else "stop"

    @property
    def truncated(self) -> int:
        """How many samples were cut off at ``max_tokens``."""
        return sum(1 for reason in self.finish_reasons if reason == "length")


# --- sandboxed jobs --------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteSpec:
    """An object the sandboxed code receives whose method calls are answered by the broker.

    ``attributes`` are plain values copied into the sandbox (changing them there changes nothing
    in the broker); each name in ``methods`` (``"__call__"`` included) becomes a method that sends
    ``(name, method, args, kwargs)`` to the broker and returns its JSON answer.
    """

    name: str
    attributes: dict[str, Any] = field(default_factory=dict)
    methods: tuple[str, ...] = ()


Clock = Literal["cpu", "wall"]
"""What a call's limit counts: CPU seconds the call uses, or wall seconds it takes."""

WALL_FACTOR = 5.0
WALL_SLACK_S = 1.0
"""A ``cpu``-clock call is also stopped after ``WALL_FACTOR * call_timeout_s + WALL_SLACK_S`` wall
seconds: generous enough for a call far inside its CPU limit on a machine whose cores are shared
several times over, and it ends calls that wait (sleep, block) rather than compute."""

STARTUP_TIMEOUT_S = 10.0
"""Default wall seconds a job may take to start: receive and decode its calls, load its source."""


@dataclass(frozen=True)
class Job:
    """Untrusted source to run in a sandbox: define it, then call ``entry`` once per ``calls`` item.

    An argument written ``{"$remote": NAME}`` is replaced by the proxy for ``remotes`` entry NAME.
    Positions listed in ``array_args`` are turned into numpy arrays in the sandbox.

    Time limits. Start-up (the job's calls decoded, ``modules`` and ``source`` loaded) may take
    ``startup_timeout_s`` of wall time; it is never charged to a call. Each call then has its own
    limit, counted from the moment the call starts inside the sandbox: with ``clock="cpu"``,
    ``call_timeout_s`` seconds of CPU time (the process's, threads and waited-for children
    included) and ``call_wall_s()`` of wall time; with ``clock="wall"``, ``call_timeout_s`` of wall
    time. A call past its limit is stopped and fails with ``timed_out``; the calls after it still
    run (in a fresh process when the slow one had to be killed). The whole job, restarts, proxy
    calls and their answers included, ends at ``deadline()`` wall seconds after it got a sandbox
    slot, whatever the sandboxed code sends; calls not reached by then have no result.

    ``seed`` seeds ``random`` and ``numpy.random`` in the sandbox before the source runs, so a
    job's randomness is the same when a run is replayed. ``modules`` are ``(name, source)`` pairs
    the job's source can import (e.g. ``helpers``).
    """

    source: str
    entry: str
    calls: tuple[tuple[Any, ...], ...]
    call_timeout_s: float
    array_args: frozenset[int] = frozenset()
    remotes: tuple[RemoteSpec, ...] = ()
    seed: int = 0
    modules: tuple[tuple[str, str], ...] = ()
    clock: Clock = "cpu"
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    deadline_s: float | None = None

    def call_wall_s(self) -> float:
        """Wall seconds one call may take before it is stopped."""
        if self.clock == "wall":
            return self.call_timeout_s
        return WALL_FACTOR * self.call_timeout_s + WALL_SLACK_S

    def deadline(self) -> float:
        """Wall seconds the whole job may take: ``deadline_s``, or start-up plus every call at its limit."""
        if self.deadline_s is not None:
            return self.deadline_s
        return self.startup_timeout_s + len(self.calls) * self.call_wall_s()


@dataclass(frozen=True)
class CallResult:
    """One call of a job's entry function: its returned data, or why there is none.

    ``timed_out`` marks a call stopped at (or found past) its limit; ``cpu_s`` is the CPU time the
    sandbox measured for the call (None when it reported none); ``elapsed_s`` is the call's wall
    time as the broker saw it.
    """

    ok: bool
    value: Any = None
    error: str = ""
    elapsed_s: float = 0.0
    timed_out: bool = False
    cpu_s: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What a sandboxed job produced. Candidate failures are data here, never exceptions.

    ``ok`` is False when the job as a whole failed (did not compile, lacked ``entry``, ran past
    its start-up limit or its deadline, broke the protocol); ``results`` then holds the calls that
    finished before that. A call that timed out or crashed is a failed result, not a failed job.
    ``restarts`` counts the fresh processes the job needed after a call had to be killed.
    """

    ok: bool
    results: tuple[CallResult, ...] = ()
    reason: str = ""
    stderr: str = ""
    elapsed_s: float = 0.0
    restarts: int = 0


# --- tasks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One problem instance: ``args`` go to the solution; ``answer`` stays with the scorer."""

    args: tuple[Any, ...]
    answer: Any = None


@dataclass(frozen=True)
class Score:
    """A trusted score in [0, 1]; ``reason`` says why the output was rejected, if it was."""

    value: float
    reason: str = ""


# --- the loop --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Iteration:
    """One step of the STOP loop (t = 0 scores the seed improver).

    ``incumbent_id`` is the improver in force *after* this step's decision; ``val``/``test``
    are the candidate's meta-utility estimates (None when no candidate came back).
    """

    t: int
    candidate_id: int | None
    incumbent_id: int
    val: float | None
    val_se: float | None
    test: float | None
    test_se: float | None
    accepted: bool
    reason: str = ""


# --- recording -------------------------------------------------------------------------------


class Recorder(Protocol):
    """Where the broker and the loop write what happened (the run store implements it)."""

    def program(self, kind: str, source: str, parent_id: int | None = None) -> int:
        """Store a program (``improver`` or ``solution``) once; return its id."""
        ...

    def evaluation(
        self, program_id: int, tag: str, task: str, split: str,
        score: float, instances: int, failed: int, reason: str, elapsed_s: float,
    ) -> None: ...

    def lm_call(self, request: LMRequest, response: LMResponse) -> None: ...

    def event(self, kind: str, detail: str, program_id: int | None = None) -> None: ...

    def iteration(self, row: Iteration) -> None: ...

    def source(self, program_id: int) -> str:
        """The source of a stored program."""
        ...


# --- runs ------------------------------------------------------------------------------------

STALE_AFTER_S = 90.0
"""A broker heartbeat older than this means the broker is gone (nine missed beats of 10 s)."""


def broker_state(status: str, pid: int | None, host: str, heartbeat_at: float | None,
                 now: float | None = None) -> str:
    """A stored run ``status``, or ``interrupted`` when it says ``running`` but its broker is gone.

    On the broker's own host a missing pid settles it at once; from elsewhere (or if the pid was
    reused) a heartbeat older than ``STALE_AFTER_S`` does.
    """
    if status != "running":
        return status
    now = time.time() if now is None else now
    if heartbeat_at is not None and now - heartbeat_at > STALE_AFTER_S:
        return "interrupted"
    if pid is not None and host == socket.gethostname() and not _pid_alive(pid):
        return "interrupted"
    return status


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process holds the pid
    return True
