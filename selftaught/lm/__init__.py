"""Language models: one small protocol, backends behind it, wrappers around it.

Backends: ``OpenAICompatibleLM`` (official ``openai`` SDK), ``ScriptedLM`` (a deterministic fake).
Wrappers: ``RetryingLM`` (the one retry policy), ``ConcurrencyLimitedLM``.
Test servers: ``FakeOpenAIServer``, ``FakeAnthropicServer``.
``get_lm(spec, config, env)`` builds a model from a spec through the plugin registry.
"""

from selftaught.lm.base import LanguageModel
from selftaught.lm.fake_server import FakeAnthropicServer, FakeOpenAIServer, RecordedRequest, Reply, in_order
from selftaught.lm.limits import ConcurrencyLimitedLM
from selftaught.lm.openai_backend import OpenAICompatibleLM
from selftaught.lm.registry import LMRegistry, default_spec, get_lm, register_builtins
from selftaught.lm.retry import LMTransientError, RetryingLM, RetryPolicy
from selftaught.lm.scripted import ScriptedLM

__all__ = [
    "ConcurrencyLimitedLM",
    "FakeAnthropicServer",
    "FakeOpenAIServer",
    "LMRegistry",
    "LMTransientError",
    "LanguageModel",
    "OpenAICompatibleLM",
    "RecordedRequest",
    "Reply",
    "RetryPolicy",
    "RetryingLM",
    "ScriptedLM",
    "default_spec",
    "get_lm",
    "in_order",
    "register_builtins",
]
