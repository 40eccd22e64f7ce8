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

from selftaught.lm.anthropic_backend import AnthropicLM
from selftaught.lm.base import LanguageModel
from selftaught.lm.cache import CachingLM, InMemoryCache, ReplayLM, ResponseCache, cache_key
from selftaught.lm.context import check_fits, context_window
from selftaught.lm.fake_server import FakeAnthropicServer, FakeOpenAIServer, RecordedRequest, Reply, in_order
from selftaught.lm.limits import ConcurrencyLimitedLM
from selftaught.lm.manual import ManualLM
from selftaught.lm.meter import Caps, Meter, MeteredLM, Usage
from selftaught.lm.openai_backend import OpenAICompatibleLM
from selftaught.lm.pricing import Price, PriceTable
from selftaught.lm.registry import LMRegistry, default_registry, default_spec, get_lm, register_builtins
from selftaught.lm.retry import LMTransientError, RetryingLM, RetryPolicy
from selftaught.lm.scripted import ScriptedLM

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
]
