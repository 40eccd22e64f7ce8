"""Spec -> LanguageModel through the plugin registry."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from selftaught.config import LMConfig
from selftaught.errors import ConfigError
from selftaught.lm import FakeOpenAIServer, LanguageModel, LMRegistry, ScriptedLM, default_spec, get_lm
from selftaught.lm.limits import ConcurrencyLimitedLM
from selftaught.lm.openai_backend import OpenAICompatibleLM
from selftaught.lm.registry import default_registry, register_builtins
from selftaught.lm.retry import RetryingLM
from selftaught.records import LMRequest

CONFIG = LMConfig(max_retries=2, concurrency=3, timeout_s=5)


def test_default_spec() -> None:
    assert default_spec({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "a"}) == "openai:gpt-4o-mini"
    assert default_spec({"ANTHROPIC_API_KEY": "a"}).startswith("anthropic:claude-")
    assert default_spec({"OPENAI_API_KEY": ""}) == "local"


def test_builtins_come_from_the_entry_point() -> None:
    assert {"openai", "anthropic", "local", "manual"} <= set(default_registry().prefixes())


def test_openai_spec_against_the_fake_server() -> None:
    with FakeOpenAIServer("pong") as fake:
        env = {"OPENAI_API_KEY": "sk-from-env-123456", "OPENAI_BASE_URL": fake.base_url}
        lm = get_lm("openai:my-model", CONFIG, env)
        assert isinstance(lm, ConcurrencyLimitedLM) and lm.limit == 3
        assert isinstance(lm.inner, RetryingLM) and lm.inner.policy.max_retries == 2
        assert lm.name == "openai:my-model"
        assert lm.complete(LMRequest(system="", user="ping")).texts == ("pong",)
        assert fake.requests[0].authorization == "Bearer sk-from-env-123456"
        assert fake.requests[0].body["model"] == "my-model"


def test_openai_local_server_needs_no_key() -> None:
    lm = get_lm("openai:llama", CONFIG, {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, wrap=False)
    assert isinstance(lm, OpenAICompatibleLM) and lm.base_url == "http://127.0.0.1:1/v1"


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("nope:x", {}, "unknown LM 'nope:x'"),
        ("openai", {"OPENAI_API_KEY": "k"}, "needs a model: use openai:MODEL"),
        ("openai:gpt-4o", {}, "set OPENAI_API_KEY"),
        ("anthropic", {"ANTHROPIC_API_KEY": "k"}, "needs a model: use anthropic:MODEL"),
        ("anthropic:claude-haiku-4-5", {}, "set ANTHROPIC_API_KEY"),
        ("manual", {}, "manual:DIR"),
    ],
)
def test_config_errors_say_what_to_set(spec: str, env: Mapping[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_lm(spec, CONFIG, env)


def test_plugins_register_like_builtins() -> None:
    registry = LMRegistry()
    register_builtins(registry.register)

    def scripted(rest: str, config: LMConfig, env: Mapping[str, str]) -> LanguageModel:
        return ScriptedLM([rest or "default"], name=f"scripted:{rest}")

    registry.register("scripted", scripted)
    lm = get_lm("scripted:hello", CONFIG, {}, registry=registry)
    assert lm.complete(LMRequest(system="", user="u")).texts == ("hello",)
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register("openai", scripted)
    with pytest.raises(ConfigError, match="invalid LM prefix"):
        registry.register("a:b", scripted)


_WITHOUT_SDKS = """
import sys
from importlib.abc import MetaPathFinder


class NoSDKs(MetaPathFinder):  # this interpreter behaves as if neither SDK were installed
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("openai", "anthropic"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoSDKs())
from selftaught.cli import main

sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_missing_sdk_is_one_line_naming_the_pip_command(sdk: str, tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-0123456789", "ANTHROPIC_API_KEY": "sk-ant-test-0123456789"}
    done = subprocess.run([sys.executable, "-c", _WITHOUT_SDKS, "run", "--lm", f"{sdk}:some-model",
                           "--runs-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"selftaught: error: {sdk}:some-model needs the {sdk} SDK, which is not installed: "
                           f"pip install 'selftaught[{sdk}]'\n")
    assert not (tmp_path / "selftaught.db").exists()  # nothing was started


def test_a_missing_module_that_is_not_an_sdk_is_not_explained_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "selftaught.lm.openai_backend")
    monkeypatch.setitem(sys.modules, "selftaught.lm.usage", None)  # a broken install of our own, not the SDK
    with pytest.raises(ModuleNotFoundError, match="selftaught.lm.usage"):
        get_lm("openai:m", CONFIG, {"OPENAI_API_KEY": "sk-test-0123456789"})
