"""Fake OpenAI-compatible and Anthropic HTTP servers on loopback, for tests of real SDK clients.

``FakeOpenAIServer`` answers ``POST /v1/chat/completions``; ``FakeAnthropicServer`` answers
``POST /v1/messages``. Each runs the stdlib ``http.server`` in a background thread bound to
127.0.0.1 on a free port, is a context manager, and records every request it receives (path,
headers, JSON body) so tests can check what a client sent, keys included.

A *responder* decides each answer: ``(request_json) -> str | Reply`` (or one fixed ``str`` or
``Reply``; a responder that raises gets a 500). A plain string answers every requested sample
with that text; a ``Reply`` can also express an HTTP error (with Retry-After), a
delay, a malformed body, empty choices, a server that ignores ``n``, samples cut off at the
completion limit (``finish_reasons``), prompt-cache usage, or no usage at all. ``in_order`` turns
a list of answers into a responder; ``rejecting`` answers like a model that refuses some request
parameters (``temperature``, ``max_tokens``, ``n``) and otherwise defers to another responder.

Left out: streaming, tools, embeddings, any endpoint but the two above, TLS, real tokenization
(token counts are word counts unless a ``Reply`` gives them).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "FakeAnthropicServer",
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "Responder",
    "in_order",
    "rejecting",
]


@dataclass(frozen=True)
class Reply:
    """One scripted answer of a fake server.

    Attributes:
        text: content of every choice (``None`` sends JSON ``null`` as the content).
        texts: explicit content per choice; overrides ``text`` and ``choices``.
        choices: how many choices to send; ``None`` honours the request's ``n``, ``1`` mimics a
            server that ignores ``n``, ``0`` sends an empty ``choices`` list.
        status: HTTP status; anything but 200 sends an error body with ``error_message``.
        error_message: message inside the error body.
        retry_after: value of a ``Retry-After`` header, e.g. ``"0"`` or ``"1"``.
        delay_s: seconds to wait before answering (to trigger client timeouts).
        raw_body: sent verbatim instead of a JSON answer (e.g. malformed JSON).
        prompt_tokens, completion_tokens: usage to report; ``None`` counts words.
        finish_reasons: the provider's reason per choice (OpenAI ``finish_reason``, e.g. ``length``;
            Anthropic: the message's ``stop_reason``, e.g. ``max_tokens``); ``None``: finished normally.
        cached_prompt_tokens: prompt tokens reported as read from the prompt cache.
        cache_write_tokens: prompt tokens reported as written to the cache (Anthropic).
        usage: send a ``usage`` object at all.
        error_param: the ``param`` of an error body (OpenAI names the rejected parameter there).
    """

    text: str | None = ""
    texts: tuple[str | None, ...] | None = None
    choices: int | None = None
    status: int = 200
    error_message: str = "scripted error"
    retry_after: str | None = None
    delay_s: float = 0.0
    raw_body: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reasons: tuple[str, ...] | None = None
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    usage: bool = True
    error_param: str | None = None


Responder = Callable[[dict[str, Any]], "str | Reply"]


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake server received."""

    path: str
    headers: dict[str, str]
    body: Any

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header, or ``""``."""
        return self.header("authorization")

    def header(self, name: str) -> str:
        """A header by case-insensitive name, or ``""``."""
        return self.headers.get(name.lower(), "")


def in_order(answers: Iterable[str | Reply]) -> Responder:
    """A responder that gives ``answers`` one per request, then repeats the last one forever."""
    items = list(answers)
    if not items:
        raise ValueError("in_order needs at least one answer")
    counter = itertools.count()
    lock = threading.Lock()

    def respond(_request: dict[str, Any]) -> str | Reply:
        with lock:
            index = next(counter)
        return items[min(index, len(items) - 1)]

    return respond


def rejecting(parameters: Iterable[str], then: Responder | str | Reply = "ok") -> Responder:
    """A responder for a model that rejects ``parameters``: HTTP 400 naming the first one a request
    carries, in OpenAI's words for reasoning models; requests without them go to ``then``."""
    refused = tuple(parameters)
    inner = _constant(then) if isinstance(then, str | Reply) else then

    def respond(request: dict[str, Any]) -> str | Reply:
        for name in refused:
            if name in request:
                if name == "max_tokens":
                    message = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                               "Use 'max_completion_tokens' instead.")
                else:
                    message = (f"Unsupported value: '{name}' does not support {request[name]!r} with this model. "
                               "Only the default value is supported.")
                return Reply(status=400, error_message=message, error_param=name)
        return inner(request)

    return respond


def _constant(answer: str | Reply) -> Responder:
    def respond(_request: dict[str, Any]) -> str | Reply:
        return answer

    return respond


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


class _FakeServer:
    """Shared machinery: the HTTP server thread, request log and reply rendering."""

    path = ""
    base_suffix = ""

    def __init__(self, responder: Responder | str | Reply = "ok") -> None:
        self._responder: Responder = _constant(responder) if isinstance(responder, str | Reply) else responder
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> None:
        """Bind to a free loopback port and serve in a background thread."""
        if self._httpd is not None:
            return
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-lm-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> _FakeServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what tests read ---

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("the fake server is not running; use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give an SDK as its base URL."""
        return f"http://127.0.0.1:{self.port}{self.base_suffix}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    # --- serving ---

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: status, extra headers, body."""
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = None
        with self._lock:
            self._requests.append(RecordedRequest(path=path, headers=headers, body=body))
        if path != self.path or not isinstance(body, dict):
            return 404, {}, self.error_body(404, f"no route for {path}")
        try:
            answer = self._responder(body)
        except Exception as exc:  # a broken responder should fail the test, not hang the client
            return 500, {}, self.error_body(500, f"the responder raised {type(exc).__name__}: {exc}")
        reply = Reply(text=answer) if isinstance(answer, str) else answer
        if reply.delay_s > 0:
            time.sleep(reply.delay_s)
        extra = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
        if reply.raw_body is not None:
            return reply.status, extra, reply.raw_body.encode()
        if reply.status != 200:
            return reply.status, extra, self.error_body(reply.status, reply.error_message, reply.error_param)
        return 200, extra, json.dumps(self.success_body(body, reply)).encode()

    def error_body(self, status: int, message: str, param: str | None = None) -> bytes:
        raise NotImplementedError

    def success_body(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        raise NotImplementedError


def _make_handler(server: _FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, extra, payload = server.handle(self.path, headers, raw)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except ConnectionError:  # the client gave up (e.g. its timeout fired first)
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
            return  # keep test output clean

    return Handler


class FakeOpenAIServer(_FakeServer):
    """A fake OpenAI-compatible server: ``POST /v1/chat/completions``; ``base_url`` ends in ``/v1``."""

    path = "/v1/chat/completions"
    base_suffix = "/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self.start()
        return self

    def error_body(self, status: int, message: str, param: str | None = None) -> bytes:
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_error"}.get(
            status, "server_error")
        code = "unsupported_parameter" if param is not None else str(status)
        return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()

    def success_body(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        if reply.texts is not None:
            texts = list(reply.texts)
        else:
            count = reply.choices if reply.choices is not None else int(request.get("n") or 1)
            texts = [reply.text] * count
        prompt = " ".join(str(m.get("content", "")) for m in request.get("messages", []) if isinstance(m, dict))
        prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else _words(prompt)
        completion = reply.completion_tokens
        completion_tokens = completion if completion is not None else sum(_words(t) for t in texts)
        reasons = list(reply.finish_reasons or ())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_prompt_tokens},
        }
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(request.get("model", "")),
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": reasons[i] if i < len(reasons) else "stop",
                    "logprobs": None,
                }
                for i, text in enumerate(texts)
            ],
            **({"usage": usage} if reply.usage else {}),
        }


class FakeAnthropicServer(_FakeServer):
    """A fake Anthropic Messages server: ``POST /v1/messages``; ``base_url`` has no path.

    ``Reply.texts`` become several text blocks of one message; ``choices=0`` sends no content.
    """

    path = "/v1/messages"

    def __enter__(self) -> FakeAnthropicServer:
        self.start()
        return self

    def error_body(self, status: int, message: str, param: str | None = None) -> bytes:
        kind = {
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()

    def success_body(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        texts: list[str | None] = [] if reply.choices == 0 else [reply.text]
        if reply.texts is not None:
            texts = list(reply.texts)
        system = request.get("system", "")
        prompt = " ".join([str(system)] + [str(m.get("content", "")) for m in request.get("messages", [])])
        input_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else _words(prompt)
        completion = reply.completion_tokens
        output_tokens = completion if completion is not None else sum(_words(t) for t in texts)
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": str(request.get("model", "")),
            "content": [{"type": "text", "text": text} for text in texts],
            "stop_reason": (reply.finish_reasons or ("end_turn",))[0],
            "stop_sequence": None,
            # Anthropic's input_tokens leaves out the tokens read from or written to the cache.
            **({"usage": {"input_tokens": max(input_tokens - reply.cached_prompt_tokens - reply.cache_write_tokens, 0),
                          "output_tokens": output_tokens,
                          "cache_read_input_tokens": reply.cached_prompt_tokens,
                          "cache_creation_input_tokens": reply.cache_write_tokens}} if reply.usage else {}),
        }
