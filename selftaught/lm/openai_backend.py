"""``OpenAICompatibleLM``: chat completions through the official ``openai`` SDK.

Covers OpenAI itself and every server speaking its chat-completions dialect (Azure's v1 endpoint,
vLLM, Ollama, llama.cpp server, OpenRouter, ...). One ``complete`` asks for ``n`` samples; a
server that ignores ``n`` (returns fewer choices) is asked again for the remainder until exactly
``n`` texts are in hand, and surplus choices are dropped. Token usage is summed over those requests.

Each sample's ``finish_reason`` is kept (``length``: cut off at the completion limit;
``content_filter``), and so is the prompt-cache part of the prompt
(``usage.prompt_tokens_details.cached_tokens``, billed cheaper). A server that reports no usage
gets an estimate from the text lengths, marked ``usage_estimated``.

Parameters today's models reject: reasoning models (``o1``, ``o3``, ``o4``, ``gpt-5`` ids) get
``max_completion_tokens`` and no ``temperature`` from the start; any other model that answers
HTTP 400 naming ``max_tokens``, ``temperature`` or ``n`` as unsupported is adapted (the limit sent
as ``max_completion_tokens``, the temperature left at the model's default, ``n`` samples asked
for as separate requests) and the request sent again. The adaptation is remembered for the
model and logged once (logger ``selftaught.lm``, a warning).

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

import functools
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import openai

from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.lm.context import context_window
from selftaught.lm.sdk_common import SdkBackend, SdkContext, sdk_call
from selftaught.lm.usage import estimate_prompt_tokens, estimate_tokens, finish_reason
from selftaught.records import LMRequest, LMResponse

__all__ = ["DEFAULT_OPENAI_BASE_URL", "OpenAICompatibleLM"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_ADAPTABLE = ("max_tokens", "temperature", "n")
_log = logging.getLogger("selftaught.lm")


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
        self._adapt_lock = threading.Lock()
        reasoning = model.startswith(_REASONING_PREFIXES)
        # Parameters this model is known to reject: sent differently (see the module docstring).
        self._adapted: set[str] = {"max_tokens", "temperature"} if reasoning else set()
        self._announce = reasoning  # say once, at the first request, what is sent differently
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

    @property
    def adapted(self) -> frozenset[str]:
        """The request parameters this model rejected and that are now sent differently."""
        with self._adapt_lock:
            return frozenset(self._adapted)

    def complete(self, request: LMRequest) -> LMResponse:
        self._preflight(request)
        with self._adapt_lock:
            announce, self._announce = self._announce, False
        if announce:
            _log.warning("%s is a reasoning model: the completion limit is sent as max_completion_tokens "
                         "(reasoning tokens count against it) and the temperature is left at its default",
                         self._name)
        started = time.monotonic()
        texts: list[str] = []
        reasons: list[str] = []
        prompt_tokens = completion_tokens = cached_tokens = 0
        estimated = False
        empty_in_a_row = 0
        while len(texts) < request.n:
            completion = self._create(request, request.n - len(texts))
            choices = getattr(completion, "choices", None) or []
            taken = choices[: request.n - len(texts)]
            usage = getattr(completion, "usage", None)
            if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
                prompt_tokens += usage.prompt_tokens or 0
                completion_tokens += usage.completion_tokens or 0
                details = getattr(usage, "prompt_tokens_details", None)
                cached_tokens += getattr(details, "cached_tokens", None) or 0
            elif choices:  # no usage reported: estimate it, and say so
                estimated = True
                prompt_tokens += estimate_prompt_tokens(request)
                completion_tokens += sum(estimate_tokens(_content(choice)) for choice in choices)
            if not choices:
                empty_in_a_row += 1
                if empty_in_a_row >= self._max_empty:
                    raise LMUnavailable(f"{self._name}: server returned no choices {empty_in_a_row} times in a row")
                continue
            empty_in_a_row = 0
            for choice in taken:
                texts.append(_content(choice))
                reasons.append(finish_reason(getattr(choice, "finish_reason", None)))
        return LMResponse(
            texts=tuple(texts),
            model=self._name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.monotonic() - started,
            finish_reasons=tuple(reasons),
            cached_prompt_tokens=min(cached_tokens, prompt_tokens),
            usage_estimated=estimated,
        )

    def _create(self, request: LMRequest, n: int) -> Any:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.user})
        while True:
            adapted = self.adapted
            params: dict[str, Any] = {"model": self.model, "messages": messages}
            if n != 1 and "n" not in adapted:
                params["n"] = n
            limit = "max_completion_tokens" if "max_tokens" in adapted else "max_tokens"
            params[limit] = request.max_tokens
            if "temperature" not in adapted:
                params["temperature"] = request.temperature
            try:
                return sdk_call(self._sdk_context(), functools.partial(self._send, params))
            except _Rejected as rejected:
                self._adapt(rejected.parameter)

    def _send(self, params: dict[str, Any]) -> Any:
        """One request; a 400 naming a parameter we can send differently becomes ``_Rejected``."""
        try:
            return self._client.chat.completions.create(**params)
        except openai.BadRequestError as exc:
            rejected = _rejected_parameter(exc, params)
            if rejected is None:
                raise
            raise _Rejected(rejected) from exc

    def _adapt(self, parameter: str) -> None:
        with self._adapt_lock:
            if parameter in self._adapted:
                return
            self._adapted.add(parameter)
        how = {"max_tokens": "the completion limit is sent as max_completion_tokens",
               "temperature": "requests go without temperature (the model's default)",
               "n": "each sample is a separate request"}[parameter]
        _log.warning("%s rejected the parameter %r: %s", self._name, parameter, how)

    def _sdk_context(self) -> SdkContext:
        return SdkContext(openai, openai.OpenAIError, self._name, str(self.base_url), self._timeout_s, self._key,
                          "OPENAI_API_KEY")


class _Rejected(Exception):
    """The server refused a parameter this backend can send differently."""

    def __init__(self, parameter: str) -> None:
        super().__init__(parameter)
        self.parameter = parameter


def _rejected_parameter(exc: openai.BadRequestError, params: Mapping[str, Any]) -> str | None:
    """The adaptable parameter a 400 says is unsupported (``max_tokens``, ``temperature``, ``n``), if any."""
    message = str(getattr(exc, "message", "") or exc)
    if "unsupported" not in message.lower() and "not supported" not in message.lower():
        return None
    named = getattr(exc, "param", None)
    candidates = [named] if isinstance(named, str) else []
    candidates += [name for name in _ADAPTABLE if f"'{name}'" in message or f"`{name}`" in message]
    for name in candidates:
        if name in _ADAPTABLE and name in params:
            return name
    return None


def _content(choice: Any) -> str:
    message = getattr(choice, "message", None)
    return getattr(message, "content", None) or ""
