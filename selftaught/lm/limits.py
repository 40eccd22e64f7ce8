"""``ConcurrencyLimitedLM``: at most ``limit`` requests to the inner model in flight at once.

Callers beyond the limit wait (optionally up to ``wait_timeout_s``, then ``LMUnavailable``).
Left out: token-per-minute shaping; servers that want less answer 429, which ``RetryingLM`` handles.
"""

from __future__ import annotations

import threading

from selftaught.errors import LMUnavailable
from selftaught.lm.base import LanguageModel
from selftaught.records import LMRequest, LMResponse

__all__ = ["ConcurrencyLimitedLM"]


class ConcurrencyLimitedLM:
    """Wraps ``inner`` behind a semaphore of ``limit`` slots; thread-safe."""

    def __init__(self, inner: LanguageModel, limit: int, *, wait_timeout_s: float | None = None) -> None:
        if limit < 1:
            raise ValueError(f"concurrency limit must be at least 1, not {limit}")
        self.inner = inner
        self.limit = limit
        self._wait_timeout_s = wait_timeout_s
        self._slots = threading.BoundedSemaphore(limit)

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: LMRequest) -> LMResponse:
        if not self._slots.acquire(timeout=self._wait_timeout_s):
            raise LMUnavailable(f"{self.name}: no free request slot within {self._wait_timeout_s:g} s")
        try:
            return self.inner.complete(request)
        finally:
            self._slots.release()
