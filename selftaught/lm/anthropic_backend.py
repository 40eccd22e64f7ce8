"""``AnthropicLM``: Claude models through the official ``anthropic`` SDK (Messages API).

The Messages API has no ``n``: ``complete`` sends one request per sample, one after another, and
sums their token usage. A sample's text is the concatenation of its text blocks; a reply with no
text blocks is an empty text (the model said nothing; the caller treats it as a bad sample).
Each sample's ``stop_reason`` is kept (``max_tokens`` becomes ``length``, ``refusal``
``content_filter``).

Prompt caching: when one call asks for several samples of a prompt long enough to be cached
(about 1,024 tokens), the prompt is marked ``cache_control: ephemeral`` so samples after the first
read it from Anthropic's cache. Usage counts cache reads (``cache_read_input_tokens``, billed at a
tenth of the input price) and writes (``cache_creation_input_tokens``) as part of the prompt, so
they are priced apart. A reply without usage gets an estimate, marked ``usage_estimated``.

The installed SDK no longer takes ``temperature`` as a named argument and recent models may not
accept it, so it is sent (through ``extra_body``) only when ``send_temperature=True``.

Errors are translated where they enter, as in the OpenAI backend: HTTP 408/409/429/5xx/529,
timeouts and refused connections become ``LMTransientError`` (carrying Retry-After); other 4xx
become ``LMRequestError``; a body that is not JSON is transient. The key never appears in a
message. SDK retries are off; wrap in ``RetryingLM``.

Left out: streaming, tools, extended thinking.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anthropic

from selftaught.errors import LMRequestError
from selftaught.lm.context import context_window
from selftaught.lm.sdk_common import SdkBackend, SdkContext, sdk_call
from selftaught.lm.usage import estimate_prompt_tokens, estimate_tokens, finish_reason
from selftaught.records import LMRequest, LMResponse

__all__ = ["DEFAULT_ANTHROPIC_BASE_URL", "AnthropicLM"]

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
CACHEABLE_PROMPT_TOKENS = 1024  # Anthropic caches prompts from about this size up


class AnthropicLM(SdkBackend):
    """A ``LanguageModel`` over Anthropic's Messages API; thread-safe.

    Args:
        model: the model id, e.g. ``claude-haiku-4-5``.
        api_key: the Anthropic key.
        base_url: the API root (no ``/v1``); Anthropic's when ``None``.
        timeout_s: one HTTP request's timeout.
        send_temperature: send ``request.temperature`` (models that accept it).
        context_tokens: context window for the preflight check; looked up when ``None``.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        send_temperature: bool = False,
        context_tokens: int | None = None,
    ) -> None:
        if not model:
            raise LMRequestError("AnthropicLM needs a model id")
        self.model = model
        self.base_url = base_url or DEFAULT_ANTHROPIC_BASE_URL
        self._name = f"anthropic:{model}"
        self._key = api_key
        self._timeout_s = timeout_s
        self._send_temperature = send_temperature
        self._window = context_tokens if context_tokens is not None else context_window(model)
        self._client = anthropic.Anthropic(api_key=api_key, base_url=self.base_url, timeout=timeout_s, max_retries=0)

    @classmethod
    def from_env(cls, model: str, env: Mapping[str, str], *, timeout_s: float = 120.0) -> AnthropicLM:
        """Build from ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` in ``env``."""
        key = env.get("ANTHROPIC_API_KEY") or ""
        if not key:
            raise LMRequestError("ANTHROPIC_API_KEY is not set")
        return cls(model, api_key=key, base_url=env.get("ANTHROPIC_BASE_URL") or None, timeout_s=timeout_s)

    def complete(self, request: LMRequest) -> LMResponse:
        self._preflight(request)
        started = time.monotonic()
        texts: list[str] = []
        reasons: list[str] = []
        prompt_tokens = completion_tokens = cache_read = cache_write = 0
        estimated = False
        cache = request.n > 1 and estimate_prompt_tokens(request) >= CACHEABLE_PROMPT_TOKENS
        for _ in range(request.n):
            message = self._create(request, cache)
            blocks = message.content or []
            text = "".join(block.text for block in blocks if getattr(block, "type", "") == "text")
            usage = getattr(message, "usage", None)
            if usage is not None and (usage.input_tokens or usage.output_tokens):
                read = getattr(usage, "cache_read_input_tokens", None) or 0
                write = getattr(usage, "cache_creation_input_tokens", None) or 0
                # Anthropic's input_tokens leaves out the cached part; the prompt is all three.
                prompt_tokens += (usage.input_tokens or 0) + read + write
                completion_tokens += usage.output_tokens or 0
                cache_read, cache_write = cache_read + read, cache_write + write
            else:
                estimated = True
                prompt_tokens += estimate_prompt_tokens(request)
                completion_tokens += estimate_tokens(text)
            texts.append(text)
            reasons.append(finish_reason(getattr(message, "stop_reason", None)))
        return LMResponse(
            texts=tuple(texts),
            model=self._name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.monotonic() - started,
            finish_reasons=tuple(reasons),
            cached_prompt_tokens=cache_read,
            cache_write_tokens=cache_write,
            usage_estimated=estimated,
        )

    def _create(self, request: LMRequest, cache: bool = False) -> Any:
        content: Any = request.user
        if cache:
            content = [{"type": "text", "text": request.user, "cache_control": {"type": "ephemeral"}}]
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": content}],
        }
        if request.system:
            params["system"] = request.system
        if self._send_temperature:
            params["extra_body"] = {"temperature": request.temperature}
        return sdk_call(self._sdk_context(), lambda: self._client.messages.create(**params))

    def _sdk_context(self) -> SdkContext:
        return SdkContext(anthropic, anthropic.AnthropicError, self._name, str(self.base_url), self._timeout_s,
                          self._key, "ANTHROPIC_API_KEY")
