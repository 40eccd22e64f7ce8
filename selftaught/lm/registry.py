"""LM plugin registry: turns a spec like ``openai:gpt-4o-mini`` into a ready ``LanguageModel``.

Backends are plugins registered through one callback, ``register(prefix, factory)``, where a
factory is ``(rest_of_spec, config, env) -> LanguageModel``. Plugins declare a function taking that
callback in the entry-point group ``selftaught.lm``; the built-ins (``openai``, ``anthropic``,
``local``, ``manual``) load exactly the same way through ``register_builtins`` (and are registered
directly if the package's own entry point is missing, e.g. when run from a source tree).

``get_lm`` wraps the backend in the standard stack built from ``LMConfig``: retries
(``RetryingLM``, ``config.max_retries``) inside a concurrency limit (``config.concurrency``).
Caching, replay and metering need a run store and budgets, so the composition root adds them.

Environment variables are read from the ``env`` mapping passed in, never from ``os.environ``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

from selftaught.config import LMConfig
from selftaught.errors import ConfigError, LMRequestError
from selftaught.lm.base import LanguageModel
from selftaught.lm.limits import ConcurrencyLimitedLM
from selftaught.lm.retry import RetryingLM, RetryPolicy

__all__ = [
    "ENTRY_POINT_GROUP",
    "Factory",
    "LMRegistry",
    "Register",
    "default_registry",
    "default_spec",
    "get_lm",
    "register_builtins",
    "standard_stack",
]

ENTRY_POINT_GROUP = "selftaught.lm"
REPLAY_PREFIX = "replay"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"

Factory = Callable[[str, LMConfig, Mapping[str, str]], LanguageModel]
Register = Callable[[str, Factory], None]


class LMRegistry:
    """Prefix -> factory. ``register`` is the callback handed to plugins."""

    def __init__(self) -> None:
        self._factories: dict[str, Factory] = {}
        self._lock = threading.Lock()

    def register(self, prefix: str, factory: Factory) -> None:
        """Add a backend under ``prefix``; a prefix taken by another factory is a ``ConfigError``."""
        if not prefix or ":" in prefix or prefix != prefix.strip():
            raise ConfigError(f"invalid LM prefix {prefix!r}: a non-empty word without ':'")
        with self._lock:
            existing = self._factories.get(prefix)
            if existing is not None and existing is not factory:
                raise ConfigError(f"LM prefix {prefix!r} is registered twice (two plugins claim it)")
            self._factories[prefix] = factory

    def prefixes(self) -> list[str]:
        """The registered prefixes, sorted."""
        with self._lock:
            return sorted(self._factories)

    def load_entry_points(self) -> None:
        """Run every ``selftaught.lm`` entry point's register function; built-ins at least."""
        found_builtin = False
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                function = point.load()
            except Exception as exc:  # a broken plugin must say which one it is
                raise ConfigError(f"LM plugin {point.name!r} ({point.value}) failed to load: {exc}") from exc
            function(self.register)
            found_builtin = found_builtin or point.value == "selftaught.lm.registry:register_builtins"
        if not found_builtin:
            register_builtins(self.register)

    def create(self, spec: str, config: LMConfig, env: Mapping[str, str]) -> LanguageModel:
        """The bare backend for ``spec`` (``prefix`` or ``prefix:rest``)."""
        prefix, _, rest = spec.partition(":")
        with self._lock:
            factory = self._factories.get(prefix)
        if factory is None:
            # replay: is served by the run store (the composition root), not by a factory here.
            known = ", ".join(sorted({*self.prefixes(), REPLAY_PREFIX}))
            if prefix == REPLAY_PREFIX:
                raise ConfigError(f"{spec!r}: replay:RUN_ID needs a run store; use it with selftaught run or replay")
            raise ConfigError(f"unknown LM {spec!r}: the prefix {prefix!r} is not one of {known} "
                              f"(e.g. openai:MODEL, anthropic:MODEL, local, local:qwen2.5-coder-1.5b, "
                              f"local:PATH.gguf, manual:DIR, replay:RUN_ID)")
        return factory(rest, config, env)


_default: LMRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> LMRegistry:
    """The process-wide registry, with entry points loaded on first use."""
    global _default
    with _default_lock:
        if _default is None:
            registry = LMRegistry()
            registry.load_entry_points()
            _default = registry
        return _default


def standard_stack(lm: LanguageModel, config: LMConfig) -> LanguageModel:
    """``lm`` with retries (``config.max_retries``) inside a ``config.concurrency`` limit."""
    return ConcurrencyLimitedLM(RetryingLM(lm, RetryPolicy(max_retries=config.max_retries)), config.concurrency)


def get_lm(
    spec: str,
    config: LMConfig,
    env: Mapping[str, str],
    *,
    registry: LMRegistry | None = None,
    wrap: bool = True,
) -> LanguageModel:
    """The language model for ``spec`` (``""`` means ``default_spec(env)``).

    Raises ``ConfigError`` with one line saying what to set when the spec is unknown, lacks a
    model, or its credentials are missing. ``wrap=False`` returns the bare backend.
    """
    lm = (registry or default_registry()).create(spec or default_spec(env), config, env)
    return standard_stack(lm, config) if wrap else lm


def default_spec(env: Mapping[str, str]) -> str:
    """``openai:gpt-4o-mini`` with an OpenAI key, else a Claude model with an Anthropic key, else ``local``."""
    if env.get("OPENAI_API_KEY"):
        return f"openai:{DEFAULT_OPENAI_MODEL}"
    if env.get("ANTHROPIC_API_KEY"):
        return f"anthropic:{DEFAULT_ANTHROPIC_MODEL}"
    return "local"


# --- built-in factories ------------------------------------------------------------------------


def register_builtins(register: Register) -> None:
    """Entry point of the built-in backends (they register like any plugin)."""
    register("openai", _openai)
    register("anthropic", _anthropic)
    register("local", _local)
    register("manual", _manual)


def _missing_sdk(exc: ModuleNotFoundError, sdk: str, spec: str) -> ConfigError:
    """One line naming the pip command, when ``exc`` says the optional ``sdk`` package is not installed."""
    if (exc.name or "").partition(".")[0] != sdk:
        raise exc  # some other module is missing: not ours to explain
    return ConfigError(f"{spec} needs the {sdk} SDK, which is not installed: pip install 'selftaught[{sdk}]'")


def _openai(model: str, config: LMConfig, env: Mapping[str, str]) -> LanguageModel:
    try:
        from selftaught.lm.openai_backend import OpenAICompatibleLM
    except ModuleNotFoundError as exc:  # the SDKs are extras (scripts/install.sh installs both)
        raise _missing_sdk(exc, "openai", f"openai:{model}") from None

    if not model:
        raise ConfigError(f"the openai LM needs a model: use openai:MODEL, e.g. openai:{DEFAULT_OPENAI_MODEL}")
    if not env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL"):
        raise ConfigError(
            f"openai:{model} needs an API key: set OPENAI_API_KEY (and OPENAI_BASE_URL for another server)"
        )
    try:
        return OpenAICompatibleLM.from_env(model, env, timeout_s=config.timeout_s)
    except LMRequestError as exc:
        raise ConfigError(str(exc)) from exc


def _anthropic(model: str, config: LMConfig, env: Mapping[str, str]) -> LanguageModel:
    try:
        from selftaught.lm.anthropic_backend import AnthropicLM
    except ModuleNotFoundError as exc:
        raise _missing_sdk(exc, "anthropic", f"anthropic:{model}") from None

    if not model:
        raise ConfigError(
            f"the anthropic LM needs a model: use anthropic:MODEL, e.g. anthropic:{DEFAULT_ANTHROPIC_MODEL}"
        )
    if not env.get("ANTHROPIC_API_KEY"):
        raise ConfigError(f"anthropic:{model} needs an API key: set ANTHROPIC_API_KEY")
    return AnthropicLM.from_env(model, env, timeout_s=config.timeout_s)


def _local(path: str, config: LMConfig, env: Mapping[str, str]) -> LanguageModel:
    from selftaught.lm.local_backend import LocalLM

    return LocalLM.from_spec(path, env)


def _manual(directory: str, config: LMConfig, env: Mapping[str, str]) -> LanguageModel:
    from pathlib import Path

    from selftaught.lm.manual import ManualLM

    if not directory:
        raise ConfigError("the manual LM needs a directory: use manual:DIR")
    return ManualLM(Path(directory), timeout_s=config.manual_timeout_s)
