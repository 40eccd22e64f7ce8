"""Context-length preflight: refuse a prompt that cannot fit the model before anything is sent.

``context_window(model)`` looks a model up in a small table of known windows (longest matching
prefix, so dated ids like ``gpt-4o-2024-08-06`` match ``gpt-4o``); unknown models return ``None``
and are not checked. ``check_fits`` raises ``PromptRejected`` (an ``LMRequestError``) when the prompt plus the requested
completion tokens exceed the window.

Without the provider's tokenizer the prompt size is a deliberately low estimate (one token per
5 characters), so a refusal here is certain; prompts near the limit are left to the server, whose
refusal is translated into the same error. The embedded backend counts tokens exactly instead.
"""

from __future__ import annotations

from selftaught.errors import PromptRejected
from selftaught.records import LMRequest

__all__ = ["CONTEXT_WINDOWS", "check_fits", "context_window", "estimate_prompt_tokens"]

CONTEXT_WINDOWS: dict[str, int] = {
    # OpenAI
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-5": 400_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    # Anthropic
    "claude-3": 200_000,
    "claude-3-5": 200_000,
    "claude-3-7": 200_000,
    "claude-sonnet-4": 200_000,
    "claude-opus-4": 200_000,
    "claude-haiku-4": 200_000,
}

CHARS_PER_TOKEN_LOW_ESTIMATE = 5


def context_window(model: str) -> int | None:
    """The context window of a known model (longest matching prefix), else ``None``."""
    best = ""
    for prefix in CONTEXT_WINDOWS:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return CONTEXT_WINDOWS[best] if best else None


def estimate_prompt_tokens(request: LMRequest) -> int:
    """A low estimate of the request's prompt tokens (system + user)."""
    return (len(request.system) + len(request.user)) // CHARS_PER_TOKEN_LOW_ESTIMATE


def check_fits(request: LMRequest, window: int | None, model: str, prompt_tokens: int | None = None) -> None:
    """Raise ``PromptRejected`` if the prompt plus ``max_tokens`` cannot fit ``window``.

    ``prompt_tokens`` is an exact count when the caller has one; otherwise it is estimated.
    """
    if window is None:
        return
    exact = prompt_tokens is not None
    tokens = prompt_tokens if prompt_tokens is not None else estimate_prompt_tokens(request)
    if tokens + request.max_tokens > window:
        about = "" if exact else "at least "
        raise PromptRejected(
            f"prompt too long for {model}: {about}{tokens} prompt tokens + max_tokens {request.max_tokens} "
            f"exceed its {window}-token context window"
        )
