"""What the backends share about a reply's bookkeeping: why a sample ended, and estimated usage.

Providers name the end of a sample differently (OpenAI ``finish_reason``, Anthropic ``stop_reason``,
llama.cpp ``finish_reason``); ``finish_reason`` maps each onto the four ``records.FinishReason``
values. A server that sends no usage gets an estimate from the text lengths (``estimate_tokens``:
about four characters per token, the usual figure for English and code), and the response says
so (``LMResponse.usage_estimated``).
"""

from __future__ import annotations

from selftaught.records import LMRequest

__all__ = ["CHARS_PER_TOKEN", "estimate_prompt_tokens", "estimate_tokens", "finish_reason"]

CHARS_PER_TOKEN = 4

_LENGTH = frozenset({"length", "max_tokens", "model_context_window_exceeded"})
_FILTERED = frozenset({"content_filter", "refusal", "safety"})


def finish_reason(provider_reason: object) -> str:
    """A provider's end-of-sample reason as ``stop``, ``length`` or ``content_filter``.

    ``stop``, ``end_turn``, ``stop_sequence``, tool calls and a missing reason all mean the model
    finished on its own.
    """
    reason = str(provider_reason or "").lower()
    if reason in _LENGTH:
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "stop"


def estimate_tokens(text: str) -> int:
    """An estimate of the tokens of ``text`` (rounded up; 0 for an empty text)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_prompt_tokens(request: LMRequest) -> int:
    """An estimate of the prompt tokens of ``request`` (system and user message)."""
    return estimate_tokens(request.system) + estimate_tokens(request.user)
