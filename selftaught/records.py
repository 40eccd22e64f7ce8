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
    "STALE_AFTER_S",
    "CallResult",
    "Recorder",
    "Instance",
    "Iteration",
    "Job",
    "LMRequest",
    "LMResponse",
    "Outcome",
    "RemoteSpec",
    "Score",
    "Split",
    "broker_state",
]

Split = Literal["train", "val", "test"]
"""train: what an improver's utility sees; val: what the loop selects on; test: reported only."""


# --- language models -------------------------------------------------------------------------


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
    """The answer to one ``LMRequest``: exactly ``request.n`` texts, in order."""

    texts: tuple[str, ...]
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    cost_usd: float = 0.0


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


@dataclass(frozen=True)
class Job:
    """Untrusted source to run in a sandbox: define it, then call ``entry`` once per ``calls`` item.

    An argument written ``{"$remote": NAME}`` is replaced by the proxy for ``remotes`` entry NAME.
    Positions listed in ``array_args`` are turned into numpy arrays in the sandbox.
    Calls run in order; each may take ``call_timeout_s`` of wall time; the job stops at the first
    timeout (later calls are not made). ``seed`` seeds ``random`` and ``numpy.random`` in the
    sandbox before the source runs, so a job's randomness is the same when a run is replayed.
    ``modules`` are ``(name, source)`` pairs the job's source can import (e.g. ``helpers``).
    """

    source: str
    entry: str
    calls: tuple[tuple[Any, ...], ...]
    call_timeout_s: float
    array_args: frozenset[int] = frozenset()
    remotes: tuple[RemoteSpec, ...] = ()
    seed: int = 0
    modules: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CallResult:
    """One call of a job's entry function: its returned data, or why there is none."""

    ok: bool
    value: Any = None
    error: str = ""
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """What a sandboxed job produced. Candidate failures are data here, never exceptions.

    ``ok`` is False when the job as a whole failed (did not compile, lacked ``entry``, timed
    out, was killed); ``results`` then holds the calls that finished before that.
    """

    ok: bool
    results: tuple[CallResult, ...] = ()
    reason: str = ""
    stderr: str = ""
    elapsed_s: float = 0.0


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


@dataclass(frozen=True)
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
