"""The sandbox protocol: run an untrusted ``Job`` and hand back an ``Outcome``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from selftaught.records import Job, Outcome

__all__ = ["Handler", "Sandbox"]

Handler = Callable[[str, str, list[Any], dict[str, Any]], Any]
"""Answers a proxy call from sandboxed code: ``handler(remote, method, args, kwargs) -> JSON``.

It runs in the broker, in the thread that called ``Sandbox.run``. A ``SelftaughtError`` it raises
is re-raised inside the sandboxed code as an exception of the same class name and message.
"""


class Sandbox(Protocol):
    """Runs untrusted jobs in isolated processes; safe to call from several threads at once.

    A job blocked in a handler call holds no slot that another job needs, so nested jobs
    (a handler that itself calls ``run``) cannot deadlock.
    """

    @property
    def layers(self) -> tuple[str, ...]:
        """The isolation layers in force, e.g. ``("rlimits", "bwrap", "seccomp")``."""
        ...

    def run(self, job: Job, handler: Handler | None = None) -> Outcome:
        """Run ``job`` to completion, failure or timeout; never raises for candidate faults."""
        ...

    def close(self) -> None:
        """Stop every worker process; nothing may be left running."""
        ...
