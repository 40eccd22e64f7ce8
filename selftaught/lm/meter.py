"""Run-level LM accounting: a thread-safe ledger of calls, tokens and dollars, with hard caps.

A ``Meter`` is the ledger; ``MeteredLM`` wraps a model and books every call on a meter (several
models may share one meter). Before a call is sent, its worst case is *reserved*: every cap is
checked against what was spent, plus what calls still in flight reserved, plus this call's worst
case; if any would be exceeded the call is refused with ``RunCapExceeded`` and nothing is sent.
After the call, the reservation is replaced by the actual usage (and the response gets its
``cost_usd``); a failed call releases it.

The worst case of a request is ``n * max_tokens`` completion tokens plus ``n`` times a high
estimate of its prompt (one token per 3 characters; backends without ``n`` send the prompt once
per sample). So caps hold even with many calls in flight, at the price of refusing a call that
would, in the event, have fitted.

Cached responses (``response.cached``) count as calls toward ``max_lm_calls`` (a replayed run must
hit the same limits as the original) but cost no tokens or dollars.

A ``max_cost_usd`` cap needs a price for every model: an unpriced model is a ``ConfigError``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from selftaught.errors import ConfigError, RunCapExceeded
from selftaught.lm.base import LanguageModel
from selftaught.lm.pricing import PriceTable
from selftaught.records import LMRequest, LMResponse

__all__ = ["Caps", "Meter", "MeteredLM", "Usage"]

CHARS_PER_TOKEN_HIGH_ESTIMATE = 3


@dataclass(frozen=True)
class Caps:
    """Run-level limits; ``None`` means no cap."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_lm_calls: int | None = None


@dataclass(frozen=True)
class Usage:
    """What a meter has booked (or reserved)."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls - other.calls,
            cached_calls=self.cached_calls - other.cached_calls,
            prompt_tokens=self.prompt_tokens - other.prompt_tokens,
            completion_tokens=self.completion_tokens - other.completion_tokens,
            cost_usd=self.cost_usd - other.cost_usd,
        )


class Meter:
    """The ledger: spent usage, in-flight reservations, caps; thread-safe."""

    def __init__(self, caps: Caps | None = None, prices: PriceTable | None = None, spent: Usage | None = None) -> None:
        """``spent`` is what earlier sessions of the same run already used (a resumed run keeps its caps)."""
        self.caps = caps or Caps()
        self.prices = prices or PriceTable()
        self._lock = threading.Lock()
        self._spent = spent or Usage()
        self._reserved = Usage()

    def spent(self) -> Usage:
        """Usage booked so far (calls finished)."""
        with self._lock:
            return self._spent

    def reserve(self, model: str, request: LMRequest) -> Usage:
        """Reserve ``request``'s worst case or raise ``RunCapExceeded``; returns the reservation."""
        prompt = request.n * (-(-(len(request.system) + len(request.user)) // CHARS_PER_TOKEN_HIGH_ESTIMATE))
        completion = request.n * request.max_tokens
        cost = self._cost(model, prompt, completion)
        hold = Usage(calls=1, prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost)
        with self._lock:
            committed = self._spent + self._reserved
            self._check(committed, hold)
            self._reserved = self._reserved + hold
        return hold

    def settle(self, hold: Usage, model: str, response: LMResponse) -> LMResponse:
        """Replace reservation ``hold`` by the response's actual usage; returns it with ``cost_usd``."""
        if response.cached:
            actual = Usage(calls=1, cached_calls=1)
        else:
            cost = self._cost(model, response.prompt_tokens, response.completion_tokens,
                              response.cached_prompt_tokens, response.cache_write_tokens)
            actual = Usage(
                calls=1,
                prompt_tokens=response.prompt_tokens,
                completion_tokens=response.completion_tokens,
                cost_usd=cost,
            )
        with self._lock:
            self._reserved = self._reserved - hold
            self._spent = self._spent + actual
        return replace(response, cost_usd=actual.cost_usd)

    def release(self, hold: Usage) -> None:
        """Drop reservation ``hold`` of a call that failed (nothing is booked)."""
        with self._lock:
            self._reserved = self._reserved - hold

    def _cost(self, model: str, prompt_tokens: int, completion_tokens: int, cached: int = 0, written: int = 0) -> float:
        cost = self.prices.cost_usd(model, prompt_tokens, completion_tokens, cached, written)
        if cost is None:
            if self.caps.max_cost_usd is not None:
                raise ConfigError(f"no price known for {model}: add it to a prices TOML file to cap dollars")
            return 0.0
        return cost

    def _check(self, committed: Usage, hold: Usage) -> None:
        caps = self.caps
        if caps.max_lm_calls is not None and committed.calls + hold.calls > caps.max_lm_calls:
            raise RunCapExceeded(f"run LM call cap reached: {caps.max_lm_calls} calls")
        if caps.max_tokens is not None and committed.tokens + hold.tokens > caps.max_tokens:
            raise RunCapExceeded(
                f"run token cap {caps.max_tokens} would be exceeded: {committed.tokens} used or in flight, "
                f"this call may use up to {hold.tokens}"
            )
        if caps.max_cost_usd is not None and committed.cost_usd + hold.cost_usd > caps.max_cost_usd:
            raise RunCapExceeded(
                f"run cost cap ${caps.max_cost_usd:.2f} would be exceeded: ${committed.cost_usd:.4f} used or in "
                f"flight, this call may cost up to ${hold.cost_usd:.4f}"
            )


class MeteredLM:
    """Books every call of ``inner`` on ``meter``; refuses calls past its caps; thread-safe."""

    def __init__(self, inner: LanguageModel, meter: Meter) -> None:
        self.inner = inner
        self.meter = meter

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: LMRequest) -> LMResponse:
        hold = self.meter.reserve(self.name, request)
        try:
            response = self.inner.complete(request)
        except BaseException:
            self.meter.release(hold)
            raise
        return self.meter.settle(hold, self.name, response)
