"""A pool of sandbox actors on a Ray cluster: least-loaded dispatch, replacement of lost actors.

Each job goes to the actor with the fewest jobs in flight. When the actor dies under it (its
process or node was lost, or it was killed), the dead actor is replaced by a fresh one and the
job is sent again to the least-loaded actor, at most ``attempts`` times in all; a job whose
actor is lost every time comes back as ``Outcome(ok=False)``, like any other job that dies.
Retrying is safe because a handler-less job has no effect outside its sandbox and is seeded.
Replacements are bounded too: past ``2 * size + 2`` of them a lost actor leaves the pool for
good, and an empty pool raises ``SandboxError``. Ray's own actor restarts are off, so a job is
never queued behind a restarting actor while another one is free.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

from selftaught.config import SandboxConfig
from selftaught.distributed._actor import SandboxActor
from selftaught.errors import SandboxError
from selftaught.records import Job, Outcome

__all__ = ["ActorPool"]

ACTOR_CONCURRENCY = 4
"""Calls one actor serves at once (its sandbox computes one job at a time; others wait there)."""


@dataclass
class _Member:
    handle: Any
    in_flight: int = 0


class ActorPool:
    """``size`` sandbox actors, one CPU each, spread over the cluster's nodes."""

    def __init__(self, ray: Any, config: SandboxConfig, size: int, *, attempts: int = 3,
                 start_timeout_s: float = 120.0, slack_s: float = 60.0) -> None:
        """Create the actors and wait until each has its sandbox running (``SandboxError`` if not)."""
        self._ray = ray
        self._config = config
        self._attempts = attempts
        self._slack_s = slack_s
        self._remote = ray.remote(num_cpus=1, max_concurrency=ACTOR_CONCURRENCY, max_restarts=0,
                                  scheduling_strategy="SPREAD")(SandboxActor)
        self._lock = threading.Lock()
        self._closed = False
        self._replacements_left = 2 * size + 2
        self._members = [_Member(self._spawn()) for _ in range(size)]
        self.hellos = self._greet(start_timeout_s)

    @property
    def handles(self) -> tuple[Any, ...]:
        """The live actors' handles."""
        with self._lock:
            return tuple(member.handle for member in self._members)

    def run(self, job: Job) -> Outcome:
        """Run ``job`` on some actor; lost actors are replaced and the job is sent again."""
        errors = self._ray.exceptions
        # A safety net only: the actor's sandbox enforces the job's own time limits.
        limit_s = job.deadline() * ACTOR_CONCURRENCY + self._slack_s
        lost: list[str] = []
        for _ in range(self._attempts):
            member, handle = self._acquire()
            try:
                outcome: Outcome = self._ray.get(handle.run.remote(job), timeout=limit_s)
                return outcome
            except errors.GetTimeoutError:
                lost.append(f"no answer in {limit_s:.0f} s")
                self._replace(member, handle, kill=True)
            except (errors.RayActorError, errors.ObjectLostError, errors.WorkerCrashedError) as exc:
                lost.append(_first_line(exc))
                self._replace(member, handle, kill=False)
            except errors.RayTaskError as exc:  # the actor's sandbox itself failed, not the job
                raise SandboxError(f"a Ray sandbox actor failed: {_first_line(exc.cause)}") from exc
            finally:
                self._release(member)
        return Outcome(ok=False, reason=f"the job lost its Ray sandbox actor {len(lost)} times: {lost[-1]}")

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop every actor's sandbox (so its node keeps no stray directory), then kill the actor."""
        with self._lock:
            self._closed = True
            members, self._members = self._members, []
        closing = [member.handle.close.remote() for member in members]
        if closing:
            self._ray.wait(closing, num_returns=len(closing), timeout=timeout_s)
        for member in members:
            self._kill(member.handle)

    # --- internals ------------------------------------------------------------------------------

    def _spawn(self) -> Any:
        return self._remote.remote(self._config)

    def _greet(self, timeout_s: float) -> list[dict[str, Any]]:
        refs = [member.handle.hello.remote() for member in self._members]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        if len(ready) < len(refs):
            self.close()
            raise SandboxError(f"only {len(ready)} of {len(refs)} Ray sandbox actors started in {timeout_s:.0f} s "
                               "(does the cluster have a free CPU for each worker?)")
        try:
            hellos: list[dict[str, Any]] = self._ray.get(refs)
        except self._ray.exceptions.RayError as exc:
            self.close()
            raise SandboxError(f"a Ray sandbox actor could not start: {_first_line(exc)}") from exc
        return hellos

    def _acquire(self) -> tuple[_Member, Any]:
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            if not self._members:
                raise SandboxError("every Ray sandbox actor was lost and the replacement bound is spent")
            member = min(self._members, key=lambda m: m.in_flight)
            member.in_flight += 1
            return member, member.handle

    def _release(self, member: _Member) -> None:
        with self._lock:
            member.in_flight -= 1

    def _replace(self, member: _Member, handle: Any, *, kill: bool) -> None:
        if kill:
            self._kill(handle)
        with self._lock:
            if self._closed or member.handle is not handle or member not in self._members:
                return  # closing, or another thread already replaced this actor
            if self._replacements_left <= 0:
                self._members.remove(member)
                return
            self._replacements_left -= 1
            member.handle = self._spawn()

    def _kill(self, handle: Any) -> None:
        with contextlib.suppress(Exception):  # already dead, or the cluster is gone: nothing to stop
            self._ray.kill(handle, no_restart=True)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
