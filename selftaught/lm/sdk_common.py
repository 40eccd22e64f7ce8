"""What the official-SDK backends share: error translation in one place, and a small base class.

The ``openai`` and ``anthropic`` SDKs share one exception shape (``APITimeoutError``,
``APIConnectionError``, ``APIStatusError``, ``APIResponseValidationError`` under a base error),
so ``sdk_call`` runs a request and maps whichever it raises: timeouts, refused connections and
malformed bodies become ``LMTransientError`` (retried), HTTP statuses go through
``error_for_status``. The API key is scrubbed from every message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.lm.context import check_fits
from selftaught.lm.retry import LMTransientError, error_for_status, parse_retry_after
from selftaught.records import LMRequest

__all__ = ["SdkBackend", "SdkContext", "error_message", "sdk_call"]

T = TypeVar("T")


@dataclass(frozen=True)
class SdkContext:
    """Who is calling: for messages (name, URL, timeout) and for scrubbing (the key and its variable)."""

    sdk: ModuleType
    base_error: type[Exception]
    name: str
    base_url: str
    timeout_s: float
    key: str
    key_variable: str

    def scrub(self, text: str) -> str:
        return text.replace(self.key, "***") if len(self.key) >= 8 else text


def sdk_call(context: SdkContext, call: Callable[[], T]) -> T:
    """``call()``, with the SDK's exceptions translated to ``LMError`` subclasses."""
    sdk = context.sdk
    try:
        return call()
    except sdk.APITimeoutError as exc:
        raise LMTransientError(f"{context.name}: no answer within {context.timeout_s:g} s") from exc
    except sdk.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise LMTransientError(context.scrub(f"{context.name}: cannot reach {context.base_url}: {cause}")) from exc
    except sdk.APIStatusError as exc:
        detail = error_message(exc.body) or exc.message
        hint = f" (check {context.key_variable})" if exc.status_code in (401, 403) else ""
        message = context.scrub(f"{context.name}: HTTP {exc.status_code}: {detail}{hint}")
        raise error_for_status(exc.status_code, message, parse_retry_after(dict(exc.response.headers))) from exc
    except (ValueError, sdk.APIResponseValidationError) as exc:
        raise LMTransientError(f"{context.name}: malformed response from {context.base_url}") from exc
    except context.base_error as exc:
        raise LMUnavailable(context.scrub(f"{context.name}: {exc}")) from exc


def error_message(body: Any) -> str:
    """The ``message`` of an error body: ``{"error": {"message": ...}}`` or ``{"message": ...}``."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return ""


class SdkBackend:
    """What the SDK backends share: their name, a client to close, and the checks before a request."""

    _name: str
    _client: Any
    _window: int | None

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Close the HTTP connection pool (also done when the object is garbage-collected)."""
        self._client.close()

    def __del__(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _preflight(self, request: LMRequest) -> None:
        """Refuse a request that asks for no samples or cannot fit the model's context window."""
        if request.n < 1:
            raise LMRequestError(f"{self._name}: n must be at least 1, not {request.n}")
        check_fits(request, self._window, self._name)
