"""The language-model protocol every backend and wrapper implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from selftaught.records import LMRequest, LMResponse

__all__ = ["LanguageModel"]


@runtime_checkable
class LanguageModel(Protocol):
    """Something that answers an ``LMRequest`` with exactly ``request.n`` texts.

    Backends translate their own errors into ``selftaught.errors.LMError`` subclasses.
    Implementations must be safe to call from several threads at once.
    """

    @property
    def name(self) -> str:
        """The spec this model was built from, e.g. ``openai:gpt-4o-mini``."""
        ...

    def complete(self, request: LMRequest) -> LMResponse:
        """Return ``request.n`` completions of the request, in order."""
        ...
