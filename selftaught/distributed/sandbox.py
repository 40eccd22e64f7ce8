"""``RaySandbox``: the ``Sandbox`` protocol with solution evaluations spread over a Ray cluster.

The unit of distributed work is one handler-less job: a batch of solution evaluations, CPU-bound
and the bulk of a run's compute. It goes to a pool of Ray actors, each owning one fork-server
sandbox (``_actor``, ``_pool``). A job with a handler (an improver run, mostly waiting on the LM)
stays on a ``ForkServerSandbox`` of this process, because its proxy calls must be answered by the
broker here, which alone holds the API key, the budgets, the cache and the run store.

Left out: placing improver jobs remotely (their handler would have to cross the network), GPU
placement, autoscaling, and TLS between nodes (Ray's own token authentication is on by default
from Ray 2.52; see the README's Ray section).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from selftaught.config import SandboxConfig
from selftaught.distributed import _cluster
from selftaught.distributed._pool import ActorPool
from selftaught.records import Job, Outcome
from selftaught.sandbox import ForkServerSandbox, time_left
from selftaught.sandbox.base import Handler, Sandbox

__all__ = ["RaySandbox"]


class RaySandbox:
    """Handler-less jobs on Ray actors (``config.workers`` of them), handler jobs on this machine."""

    def __init__(self, config: SandboxConfig, *, local: Sandbox | None = None, attempts: int = 3,
                 start_timeout_s: float = 120.0) -> None:
        """Join ``config.ray_address`` (or start a local cluster) and start the actors.

        ``local`` runs handler jobs (default: a ``ForkServerSandbox(config)`` started here and
        closed with this sandbox). ``attempts``: how many actors one job may lose before it comes
        back as a failed ``Outcome``. Raises ``ConfigError`` when Ray is not installed and
        ``SandboxError`` when the cluster or an actor's sandbox cannot start.
        """
        self.config = config
        self._ray = _cluster.load_ray()
        self._own_local = local is None
        self._local: Sandbox = local if local is not None else ForkServerSandbox(config)
        self._pool: ActorPool | None = None
        connected = False
        try:
            _cluster.connect(self._ray, config.ray_address, config.workers)
            connected = True
            self._pool = ActorPool(self._ray, config, config.workers, attempts=attempts,
                                   start_timeout_s=start_timeout_s)
        except BaseException:
            if connected:
                _cluster.release(self._ray)
            if self._own_local:
                self._local.close()
            raise
        hellos = self._pool.hellos
        remote = tuple(hellos[0]["layers"]) if hellos else ()
        self.nodes: tuple[str, ...] = tuple(sorted({str(hello["node"]) for hello in hellos}))
        """Host names of the nodes the actors run on."""
        self.warnings: list[str] = sorted({f"ray actor: {w}" for hello in hellos for w in hello["warnings"]})
        """Isolation warnings the actors' sandboxes reported (each one also prints its own)."""
        self._layers = ("ray", *(f"ray:{layer}" for layer in remote),
                        *(f"local:{layer}" for layer in self._local.layers))
        self._closed = False

    @property
    def layers(self) -> tuple[str, ...]:
        """``ray``, then the actors' sandbox layers (``ray:bwrap``...), then those of the local
        sandbox that runs improvers (``local:bwrap``...)."""
        return self._layers

    @property
    def actors(self) -> tuple[Any, ...]:
        """The live actors' Ray handles (for monitoring and tests)."""
        return self._pool.handles if self._pool is not None else ()

    def run(self, job: Job, handler: Handler | None = None) -> Outcome:
        """Run ``job``: on a Ray actor when it has no handler, else on the local sandbox."""
        if handler is not None or self._pool is None:
            return self._local.run(job, handler)
        left = time_left()  # a solution scored for an improver run ends with that run
        if left is not None and left < job.deadline():
            job = dataclasses.replace(job, deadline_s=max(left, 0.001))
        return self._pool.run(job)

    def close(self) -> None:
        """Stop the actors and the local sandbox; shut Ray down if this process started it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._pool is not None:
                self._pool.close()
        finally:
            if self._own_local:
                self._local.close()
            _cluster.release(self._ray)

    def __enter__(self) -> RaySandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
