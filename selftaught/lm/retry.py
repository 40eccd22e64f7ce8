"""The one retry policy of every backend: jittered exponential backoff that honours Retry-After.

Backends raise ``LMTransientError`` (an ``LMUnavailable``) for what is worth retrying: HTTP
408/409/429/5xx/529, timeouts, refused connections, malformed responses. ``RetryingLM`` retries
those; every other ``LMError`` passes straight through. The SDKs' own retries are switched off
(``max_retries=0``) so there is exactly one policy to reason about.

Backoff is "full jitter": attempt k waits uniform(0, min(max_delay_s, base_delay_s * 2**k)); a
server's Retry-After is a floor on that wait. A Retry-After beyond ``max_retry_after_s`` ends the
call at once rather than blocking a worker for minutes.

Left out: circuit breaking and cross-call rate shaping (see ``ConcurrencyLimitedLM``).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from selftaught.errors import LMError, LMRequestError, LMUnavailable, PromptRejected
from selftaught.lm.base import LanguageModel
from selftaught.records import LMRequest, LMResponse

__all__ = [
    "LMTransientError",
    "RetryPolicy",
    "RetryingLM",
    "error_for_status",
    "parse_retry_after",
]

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class LMTransientError(LMUnavailable):
    """A failure that may pass if the same request is sent again later.

    ``retry_after_s`` is the server's requested wait, when it sent one.
    """

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def error_for_status(status: int, message: str, retry_after_s: float | None = None) -> LMError:
    """The selftaught error for an HTTP error status: transient, or a request error."""
    if status in RETRYABLE_STATUSES or status >= 500:
        return LMTransientError(message, retry_after_s)
    lowered = message.lower()
    if status == 413 or (status == 400 and any(word in lowered for word in ("context", "too long", "too many tokens"))):
        return PromptRejected(message)
    if 400 <= status < 500:
        return LMRequestError(message)
    return LMUnavailable(message)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    Attributes:
        max_retries: retries after the first attempt (0 = try once).
        base_delay_s: backoff scale of the first retry.
        max_delay_s: cap of one backoff wait (before Retry-After is applied).
        max_retry_after_s: a longer Retry-After fails the call instead of waiting.
    """

    max_retries: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay_s(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        """The wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2**retry))
        wait = rng.uniform(0.0, ceiling)
        return max(wait, retry_after_s) if retry_after_s is not None else wait


class RetryingLM:
    """Retries ``inner`` on ``LMTransientError`` under a ``RetryPolicy``; thread-safe.

    When retries run out it raises ``LMUnavailable`` naming the attempts and the last failure.
    """

    def __init__(
        self,
        inner: LanguageModel,
        policy: RetryPolicy | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: LMRequest) -> LMResponse:
        retry = 0
        while True:
            try:
                return self.inner.complete(request)
            except LMTransientError as exc:
                after = exc.retry_after_s
                if after is not None and after > self.policy.max_retry_after_s:
                    raise LMUnavailable(f"{self.name}: server asks to wait {after:.0f} s, giving up: {exc}") from exc
                if retry >= self.policy.max_retries:
                    attempts = retry + 1
                    raise LMUnavailable(
                        f"{self.name}: failed after {attempts} attempt{'s' if attempts > 1 else ''}: {exc}"
                    ) from exc
                self._sleep(self.policy.delay_s(retry, after, self._rng))
                retry += 1
