"""``OpenAICompatibleLM``: chat completions through the official ``openai`` SDK.

Covers OpenAI itself and every server speaking its chat-completions dialect (Azure's v1 endpoint,
vLLM, Ollama, llama.cpp server, OpenRouter, ...). One ``complete`` asks for ``n`` samples; a
server that ignores ``n`` (returns fewer choices) is asked again for the remainder until exactly
``n`` texts are in hand, and surplus choices are dropped. Token usage is summed over those requests.

Decisions on odd answers:
* a choice whose content is ``null`` (refusal, content filter) becomes an empty text: the caller
  sees a sample that produced no code, like any other bad sample;
* a reply with no choices at all is asked again, up to ``max_empty_replies`` times in a row, then
  ``LMUnavailable``;
* a body that is not valid JSON is an ``LMTransientError`` (retried by ``RetryingLM``).

Errors are translated where they enter: HTTP 408/409/429/5xx, timeouts and refused connections
become ``LMTransientError`` (carrying Retry-After); other 4xx become ``LMRequestError``. The API
key is scrubbed from every message. The SDK's own retries are off; wrap in ``RetryingLM``.

Left out: streaming, tools, response formats, logprobs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import openai

from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.lm.context import context_window
from selftaught.lm.sdk_common import SdkBackend, SdkContext, sdk_call
from selftaught.records import LMRequest, LMResponse

__all__ = ["DEFAULT_OPENAI_BASE_URL", "OpenAICompatibleLM"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAICompatibleLM(SdkBackend):
    """A ``LanguageModel`` over an OpenAI-compatible chat-completions endpoint; thread-safe.

    Args:
        model: the model id sent to the server.
        api_key: the bearer key.
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``; OpenAI's when ``None``.
        timeout_s: one HTTP request's timeout.
        name: the spec reported as ``name`` (default ``openai:MODEL``).
        max_empty_replies: replies without choices tolerated in a row.
        context_tokens: the model's context window for the preflight check; looked up by model
            id when ``None`` (unknown ids are not checked).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        name: str | None = None,
        max_empty_replies: int = 3,
        context_tokens: int | None = None,
        organization: str | None = None,
        project: str | None = None,
    ) -> None:
        if not model:
            raise LMRequestError("OpenAICompatibleLM needs a model id")
        self.model = model
        self.base_url = base_url or DEFAULT_OPENAI_BASE_URL
        self._name = name or f"openai:{model}"
        self._key = api_key
        self._max_empty = max_empty_replies
        self._window = context_tokens if context_tokens is not None else context_window(model)
        self._timeout_s = timeout_s
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=self.base_url,
            organization=organization,
            project=project,
            timeout=timeout_s,
            max_retries=0,
        )

    @classmethod
    def from_env(cls, model: str, env: Mapping[str, str], *, timeout_s: float = 120.0) -> OpenAICompatibleLM:
        """Build from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``.

        A custom base URL without a key sends the placeholder key ``EMPTY`` (local servers need
        none); OpenAI's own endpoint without a key is an ``LMRequestError``.
        """
        base_url = env.get("OPENAI_BASE_URL") or None
        key = env.get("OPENAI_API_KEY") or ""
        if not key:
            if base_url is None:
                raise LMRequestError("OPENAI_API_KEY is not set")
            key = "EMPTY"
        return cls(
            model,
            api_key=key,
            base_url=base_url,
            timeout_s=timeout_s,
            organization=env.get("OPENAI_ORG_ID") or None,
            project=env.get("OPENAI_PROJECT_ID") or None,
        )

    def complete(self, request: LMRequest) -> LMResponse:
        self._preflight(request)
        started = time.monotonic()
        texts: list[str] = []
        prompt_tokens = completion_tokens = 0
        empty_in_a_row = 0
        while len(texts) < request.n:
            completion = self._create(request, request.n - len(texts))
            usage = getattr(completion, "usage", None)
            if usage is not None:
                prompt_tokens += usage.prompt_tokens or 0
                completion_tokens += usage.completion_tokens or 0
            choices = getattr(completion, "choices", None) or []
            if not choices:
                empty_in_a_row += 1
                if empty_in_a_row >= self._max_empty:
                    raise LMUnavailable(f"{self._name}: server returned no choices {empty_in_a_row} times in a row")
                continue
            empty_in_a_row = 0
            for choice in choices[: request.n - len(texts)]:
                message = getattr(choice, "message", None)
                texts.append(getattr(message, "content", None) or "")
        return LMResponse(
            texts=tuple(texts),
            model=self._name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.monotonic() - started,
        )

    def _create(self, request: LMRequest, n: int) -> Any:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.user})
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if n != 1:
            params["n"] = n
        if self.model.startswith(_REASONING_PREFIXES):
            params["max_completion_tokens"] = request.max_tokens  # reasoning models reject max_tokens
        else:
            params["max_tokens"] = request.max_tokens
            params["temperature"] = request.temperature
        return sdk_call(self._sdk_context(), lambda: self._client.chat.completions.create(**params))

    def _sdk_context(self) -> SdkContext:
        return SdkContext(openai, openai.OpenAIError, self._name, str(self.base_url), self._timeout_s, self._key,
                          "OPENAI_API_KEY")
