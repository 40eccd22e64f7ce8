"""Language models: one small protocol, backends behind it, wrappers around it.

Backends: ``OpenAICompatibleLM`` (official ``openai`` SDK), ``AnthropicLM`` (official ``anthropic``
SDK), ``LocalLM`` (embedded GGUF via llama-cpp-python, imported lazily), ``ManualLM`` (a file
queue), ``ScriptedLM`` (a deterministic fake) and ``ReplayLM`` (a recorded run).
Wrappers: ``RetryingLM`` (the one retry policy), ``ConcurrencyLimitedLM``, ``CachingLM``,
``MeteredLM`` (calls, tokens and dollars against run caps).
Test servers: ``FakeOpenAIServer``, ``FakeAnthropicServer``.
``get_lm(spec, config, env)`` builds a model from a spec through the plugin registry.

``LocalLM`` is not imported here (``selftaught.lm.local_backend``) so that importing this package
never touches llama.cpp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names load lazily: importing this package (the CLI does at start-up) must not pull in the
# openai and anthropic SDKs (about a second) until a backend is built.
_EXPORTS = {
    "AnthropicLM": "selftaught.lm.anthropic_backend",
    "CachingLM": "selftaught.lm.cache",
    "Caps": "selftaught.lm.meter",
    "ConcurrencyLimitedLM": "selftaught.lm.limits",
    "FakeAnthropicServer": "selftaught.lm.fake_server",
    "FakeOpenAIServer": "selftaught.lm.fake_server",
    "InMemoryCache": "selftaught.lm.cache",
    "LMRegistry": "selftaught.lm.registry",
    "LMTransientError": "selftaught.lm.retry",
    "LanguageModel": "selftaught.lm.base",
    "ManualLM": "selftaught.lm.manual",
    "Meter": "selftaught.lm.meter",
    "MeteredLM": "selftaught.lm.meter",
    "OpenAICompatibleLM": "selftaught.lm.openai_backend",
    "Price": "selftaught.lm.pricing",
    "PriceTable": "selftaught.lm.pricing",
    "RecordedRequest": "selftaught.lm.fake_server",
    "ReplayLM": "selftaught.lm.cache",
    "Reply": "selftaught.lm.fake_server",
    "ResponseCache": "selftaught.lm.cache",
    "RetryPolicy": "selftaught.lm.retry",
    "RetryingLM": "selftaught.lm.retry",
    "ScriptedLM": "selftaught.lm.scripted",
    "Usage": "selftaught.lm.meter",
    "cache_key": "selftaught.lm.cache",
    "check_fits": "selftaught.lm.context",
    "context_window": "selftaught.lm.context",
    "default_registry": "selftaught.lm.registry",
    "default_spec": "selftaught.lm.registry",
    "get_lm": "selftaught.lm.registry",
    "in_order": "selftaught.lm.fake_server",
    "register_builtins": "selftaught.lm.registry",
    "rejecting": "selftaught.lm.fake_server",
}

__all__ = [
    "AnthropicLM",
    "CachingLM",
    "Caps",
    "ConcurrencyLimitedLM",
    "FakeAnthropicServer",
    "FakeOpenAIServer",
    "InMemoryCache",
    "LMRegistry",
    "LMTransientError",
    "LanguageModel",
    "ManualLM",
    "Meter",
    "MeteredLM",
    "OpenAICompatibleLM",
    "Price",
    "PriceTable",
    "RecordedRequest",
    "ReplayLM",
    "Reply",
    "ResponseCache",
    "RetryPolicy",
    "RetryingLM",
    "ScriptedLM",
    "Usage",
    "cache_key",
    "check_fits",
    "context_window",
    "default_registry",
    "default_spec",
    "get_lm",
    "in_order",
    "register_builtins",
    "rejecting",
]


if TYPE_CHECKING:
    from selftaught.lm.anthropic_backend import AnthropicLM
    from selftaught.lm.base import LanguageModel
    from selftaught.lm.cache import CachingLM, InMemoryCache, ReplayLM, ResponseCache, cache_key
    from selftaught.lm.context import check_fits, context_window
    from selftaught.lm.fake_server import (
        FakeAnthropicServer,
        FakeOpenAIServer,
        RecordedRequest,
        Reply,
        in_order,
        rejecting,
    )
    from selftaught.lm.limits import ConcurrencyLimitedLM
    from selftaught.lm.manual import ManualLM
    from selftaught.lm.meter import Caps, Meter, MeteredLM, Usage
    from selftaught.lm.openai_backend import OpenAICompatibleLM
    from selftaught.lm.pricing import Price, PriceTable
    from selftaught.lm.registry import LMRegistry, default_registry, default_spec, get_lm, register_builtins
    from selftaught.lm.retry import LMTransientError, RetryingLM, RetryPolicy
    from selftaught.lm.scripted import ScriptedLM


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'selftaught.lm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
