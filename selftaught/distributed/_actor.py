"""The Ray actor body: one ``ForkServerSandbox`` per actor, running handler-less jobs.

Candidate code never runs in the Ray worker process itself (Ray reuses worker processes, and
they can talk to the cluster): the actor only forwards each job to its own fork-server sandbox,
which confines it exactly as on the driver (bubblewrap, seccomp, pid namespace, rlimits, a
dropped uid, an empty environment). This module does not import ray; ``_pool`` wraps the class
with ``ray.remote``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any

from selftaught.config import SandboxConfig
from selftaught.records import Job, Outcome
from selftaught.sandbox import ForkServerSandbox

__all__ = ["SandboxActor"]


class SandboxActor:
    """Owns one single-worker fork-server sandbox on whichever node Ray placed it."""

    def __init__(self, config: SandboxConfig) -> None:
        """Start the sandbox; a ``SandboxError`` (e.g. ``strict`` without bubblewrap) fails the actor."""
        self._sandbox = ForkServerSandbox(dataclasses.replace(config, workers=1))

    def hello(self) -> dict[str, Any]:
        """Where the actor runs and what its sandbox enforces there."""
        return {"layers": list(self._sandbox.layers), "warnings": list(self._sandbox.warnings),
                "node": socket.gethostname(), "pid": os.getpid()}

    def run(self, job: Job) -> Outcome:
        """Run one handler-less job in the sandbox."""
        return self._sandbox.run(job)

    def close(self) -> None:
        """Stop the sandbox's worker and remove its directory (before the actor is killed)."""
        self._sandbox.close()
