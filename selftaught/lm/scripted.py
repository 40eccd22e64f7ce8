"""``ScriptedLM``: a real, deterministic ``LanguageModel`` for tests and demos.

It answers from a list of texts (cycled, or consumed once) or from a function
``(request, sample_index) -> str``, and records every request in ``history``. Token counts are
word counts so accounting code has numbers to add up. Every sample ends with finish reason
``stop``; with ``stop_at_max_tokens=True`` it behaves like a real model at its completion limit: a
text longer than ``request.max_tokens`` words is cut there and reported with ``length``.
Thread-safe: samples are drawn under a lock, so concurrent callers never receive the same consumed
text twice.

Left out: latency simulation and failures (use ``FakeOpenAIServer`` for transport behaviour, or
a function that raises an ``LMError``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.records import LMRequest, LMResponse

__all__ = ["ScriptedLM"]

ScriptFunction = Callable[[LMRequest, int], str]


class ScriptedLM:
    """Answers requests from a script.

    Args:
        script: texts handed out one per sample in order, or a function of
            ``(request, sample_index)``.
        cycle: with a list, start over when it runs out; otherwise ``LMUnavailable`` then.
        name: the ``name`` to report.
        stop_at_max_tokens: cut texts longer than ``max_tokens`` words (finish reason ``length``).
    """

    def __init__(
        self, script: Sequence[str] | ScriptFunction, *, cycle: bool = True, name: str = "scripted",
        stop_at_max_tokens: bool = False,
    ) -> None:
        if not callable(script):
            if isinstance(script, str):
                raise TypeError("ScriptedLM takes a list of texts, not one string")
            if not script:
                raise ValueError("ScriptedLM needs at least one text")
        self._script = script
        self._cycle = cycle
        self._name = name
        self._stop_at_max_tokens = stop_at_max_tokens
        self._lock = threading.Lock()
        self._next = 0
        self._history: list[LMRequest] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def history(self) -> list[LMRequest]:
        """Every request received, in order (a copy)."""
        with self._lock:
            return list(self._history)

    def complete(self, request: LMRequest) -> LMResponse:
        if request.n < 1:
            raise LMRequestError(f"{self._name}: n must be at least 1, not {request.n}")
        script = self._script
        if callable(script):
            with self._lock:
                self._history.append(request)
            texts = tuple(script(request, index) for index in range(request.n))
        else:
            with self._lock:
                self._history.append(request)
                texts = tuple(self._take(script) for _ in range(request.n))
        limit = request.max_tokens if self._stop_at_max_tokens else None
        cut = tuple(_cut(text, limit) for text in texts)
        return LMResponse(
            texts=tuple(text for text, _ in cut),
            model=self._name,
            prompt_tokens=len(request.system.split()) + len(request.user.split()),
            completion_tokens=sum(len(text.split()) for text, _ in cut),
            finish_reasons=tuple(reason for _, reason in cut),
        )

    def _take(self, script: Sequence[str]) -> str:
        if self._next >= len(script):
            if not self._cycle:
                raise LMUnavailable(f"{self._name}: the script ran out after {len(script)} texts")
            self._next = 0
        text = script[self._next]
        self._next += 1
        return text


def _cut(text: str, max_tokens: int | None) -> tuple[str, str]:
    """``text`` cut after ``max_tokens`` words (tokens here; ``None``: no limit), and why it ended."""
    if max_tokens is None:
        return text, "stop"
    words = 0
    for index, char in enumerate(text):
        if not char.isspace() and (index == 0 or text[index - 1].isspace()):
            words += 1
            if words > max_tokens:
                return text[:index], "length"
    return text, "stop"
