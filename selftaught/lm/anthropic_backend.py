"""``AnthropicLM``: Claude models through the official ``anthropic`` SDK (Messages API).

The Messages API has no ``n``: ``complete`` sends one request per sample, one after another, and
sums their token usage. A sample's text is the concatenation of its text blocks; a reply with no
text blocks is an empty text (the model said nothing; the caller treats it as a bad sample).

The installed SDK no longer takes ``temperature`` as a named argument and recent models may not
accept it, so it is sent (through ``extra_body``) only when ``send_temperature=True``.

Errors are translated where they enter, as in the OpenAI backend: HTTP 408/409/429/5xx/529,
timeouts and refused connections become ``LMTransientError`` (carrying Retry-After); other 4xx
become ``LMRequestError``; a body that is not JSON is transient. The key never appears in a
message. SDK retries are off; wrap in ``RetryingLM``.

Left out: streaming, tools, extended thinking, prompt caching.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anthropic

from selftaught.errors import LMRequestError
from selftaught.lm.context import context_window
from selftaught.lm.sdk_common import SdkBackend, SdkContext, sdk_call
from selftaught.records import LMRequest, LMResponse

__all__ = ["DEFAULT_ANTHROPIC_BASE_URL", "AnthropicLM"]

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"


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
        prompt_tokens = completion_tokens = 0
        for _ in range(request.n):
            message = self._create(request)
            usage = getattr(message, "usage", None)
            if usage is not None:
                prompt_tokens += usage.input_tokens or 0
                completion_tokens += usage.output_tokens or 0
            blocks = message.content or []
            texts.append("".join(block.text for block in blocks if getattr(block, "type", "") == "text"))
        return LMResponse(
            texts=tuple(texts),
            model=self._name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.monotonic() - started,
        )

    def _create(self, request: LMRequest) -> Any:
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": request.user}],
        }
        if request.system:
            params["system"] = request.system
        if self._send_temperature:
            params["extra_body"] = {"temperature": request.temperature}
        return sdk_call(self._sdk_context(), lambda: self._client.messages.create(**params))

    def _sdk_context(self) -> SdkContext:
        return SdkContext(anthropic, anthropic.AnthropicError, self._name, str(self.base_url), self._timeout_s,
                          self._key, "ANTHROPIC_API_KEY")
