"""Content-addressed response cache, and replay of a recorded run from it.

A ``ResponseCache`` stores one text per *sample*: the key (``cache_key``) hashes the model name,
system, user, temperature, max_tokens, ``request.tag`` and the sample index. So a cached n=6 call
is replayed sample by sample, and a call asking for more samples than were recorded only sends
the missing ones. Anything implementing the two-method protocol works (the run store's SQLite
table does); ``InMemoryCache`` is the in-process one.

Each sample's metadata keeps why it ended (``finish_reason``), so a cached or replayed answer still
says it was cut off; caches that can return metadata implement ``meta(key)`` as well.

``CachingLM`` answers from the cache and asks its inner model only for missing samples.
``ReplayLM`` answers *only* from the cache: a miss is an ``LMRequestError`` ("not in the recorded
run"), never a network call.

Left out: eviction and expiry (a run's cache is its record).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from selftaught.errors import LMRequestError
from selftaught.lm.base import LanguageModel
from selftaught.records import LMRequest, LMResponse

__all__ = ["CachingLM", "InMemoryCache", "ReplayLM", "ResponseCache", "cache_key"]

KEY_VERSION = 1


@runtime_checkable
class ResponseCache(Protocol):
    """Sample texts by content-addressed key. Implementations must be thread-safe."""

    def get(self, key: str) -> str | None:
        """The stored text, or ``None``."""
        ...

    def put(self, key: str, text: str, meta: Mapping[str, Any]) -> None:
        """Store ``text`` under ``key``; ``meta`` is JSON-safe detail (request, tokens, latency)."""
        ...


def cache_key(model: str, request: LMRequest, index: int) -> str:
    """The hex SHA-256 key of sample ``index`` of ``request`` to ``model`` (``n`` is not part of it)."""
    fields = [
        KEY_VERSION,
        model,
        request.system,
        request.user,
        request.temperature,
        request.max_tokens,
        request.tag,
        index,
    ]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


class InMemoryCache:
    """A dict-backed ``ResponseCache``; thread-safe."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._texts.get(key)

    def put(self, key: str, text: str, meta: Mapping[str, Any]) -> None:
        with self._lock:
            self._texts[key] = text
            self._meta[key] = dict(meta)

    def meta(self, key: str) -> dict[str, Any] | None:
        """The metadata stored with ``key`` (a copy), or ``None``."""
        with self._lock:
            found = self._meta.get(key)
            return dict(found) if found is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._texts)


class CachingLM:
    """Answers from ``cache`` where it can, from ``inner`` for the missing samples; thread-safe.

    ``model`` is the name keys are made with (default ``inner.name``). A response wholly from the
    cache has ``cached=True`` and zero tokens; otherwise its tokens are the inner call's.
    """

    def __init__(self, inner: LanguageModel, cache: ResponseCache, *, model: str | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.model = model or inner.name

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: LMRequest) -> LMResponse:
        started = time.monotonic()
        keys = [cache_key(self.model, request, k) for k in range(request.n)]
        texts: list[str | None] = [self.cache.get(key) for key in keys]
        missing = [k for k, text in enumerate(texts) if text is None]
        reasons = [stored_finish_reason(self.cache, key) for key in keys]
        if not missing:
            found = tuple(text or "" for text in texts)
            return LMResponse(texts=found, model=self.name, latency_s=time.monotonic() - started, cached=True,
                              finish_reasons=tuple(reasons))
        fresh = self.inner.complete(replace(request, n=len(missing)))
        for position, (k, text) in enumerate(zip(missing, fresh.texts, strict=True)):
            texts[k] = text
            reasons[k] = fresh.finish_reason(position)
            self.cache.put(keys[k], text, _meta(self.model, request, k, fresh, position, len(missing)))
        return replace(fresh, texts=tuple(text or "" for text in texts), latency_s=time.monotonic() - started,
                       finish_reasons=tuple(reasons))


class ReplayLM:
    """Answers only from a recorded ``cache``; a miss raises ``LMRequestError``; thread-safe.

    ``model`` must be the name the run was recorded under (keys include it).
    """

    def __init__(self, cache: ResponseCache, model: str, *, name: str | None = None) -> None:
        self.cache = cache
        self.model = model
        self._name = name or f"replay:{model}"

    @property
    def name(self) -> str:
        return self._name

    def complete(self, request: LMRequest) -> LMResponse:
        texts: list[str] = []
        reasons: list[str] = []
        for k in range(request.n):
            key = cache_key(self.model, request, k)
            text = self.cache.get(key)
            if text is None:
                raise LMRequestError(
                    f"not in the recorded run: {self.model} call {request.tag or '(untagged)'} sample {k}"
                )
            texts.append(text)
            reasons.append(stored_finish_reason(self.cache, key))
        return LMResponse(texts=tuple(texts), model=self._name, cached=True, finish_reasons=tuple(reasons))


def stored_finish_reason(cache: ResponseCache, key: str) -> str:
    """Why a cached sample ended, from its metadata (``stop`` when the cache keeps none)."""
    meta = getattr(cache, "meta", None)
    found = meta(key) if callable(meta) else None
    reason = found.get("finish_reason") if isinstance(found, dict) else None
    return reason if isinstance(reason, str) else "stop"


def _meta(model: str, request: LMRequest, index: int, fresh: LMResponse, position: int, count: int) -> dict[str, Any]:
    """Per-sample metadata; tokens are split so the samples of one call add up to its totals."""
    completion = fresh.completion_tokens // count + (fresh.completion_tokens % count if position == 0 else 0)
    return {
        "model": model,
        "system": request.system,
        "user": request.user,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "tag": request.tag,
        "index": index,
        "prompt_tokens": fresh.prompt_tokens if position == 0 else 0,
        "completion_tokens": completion,
        "latency_s": fresh.latency_s if position == 0 else 0.0,
        "finish_reason": fresh.finish_reason(position),
        "created_at": time.time(),
    }
