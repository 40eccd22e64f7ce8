"""``ManualLM``: a file queue where a person (or another program) plays the language model.

Each request gets an id ``NNNN-xxxxxxxx`` (a counter and a content hash) and two files in the
directory: ``ID.request.json`` (the request as JSON, with the answer file names) and ``ID.md`` (the
same prompt, readable, with instructions). Sample k's answer is read from ``ID.answer-K.md`` once
that file exists and has stopped changing between two polls (writing to a temporary name and
renaming it is safest). Without every answer within ``timeout_s`` (the config's
``lm.manual_timeout_s``, 12 hours by default: a person answers, not a server) the call raises
``LMUnavailable``. While it waits it says once, through ``notify`` (stderr by default), which
files to write.

``pending(directory)`` lists the requests still missing answers and ``write_answer`` stores one
atomically: ``selftaught answer DIR`` is built on them.

Left out: token counts (reported as 0); every sample finishes with ``stop``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from selftaught.errors import LMRequestError, LMUnavailable
from selftaught.records import LMRequest, LMResponse

__all__ = ["ManualLM", "PendingRequest", "pending", "write_answer"]


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class ManualLM:
    """Writes requests as files in ``directory`` and waits for answer files; thread-safe."""

    def __init__(
        self,
        directory: Path,
        *,
        timeout_s: float = 43_200.0,
        poll_s: float = 0.2,
        notify: Callable[[str], None] = _stderr_line,
    ) -> None:
        self.directory = directory
        self._timeout_s = timeout_s
        self._notify = notify
        self._poll_s = poll_s
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"manual:{self.directory}"

    def complete(self, request: LMRequest) -> LMResponse:
        if request.n < 1:
            raise LMRequestError(f"{self.name}: n must be at least 1, not {request.n}")
        started = time.monotonic()
        request_id = self._write(request)
        answers = [self.directory / f"{request_id}.answer-{k}.md" for k in range(request.n)]
        files = answers[0].name if request.n == 1 else f"{answers[0].name} .. {answers[-1].name}"
        self._notify(
            f"{self.name}: waiting for {request.n} answer{'s' if request.n > 1 else ''} to {request_id} "
            f"({request.tag or 'untagged'}): read {self.directory / request_id}.md, write {files} "
            f"in {self.directory} (or run: selftaught answer {self.directory}); "
            f"deadline {self._timeout_s / 3600:.3g} h"
        )
        texts = tuple(self._wait_for(path, started) for path in answers)
        return LMResponse(texts=texts, model=self.name, latency_s=time.monotonic() - started,
                          finish_reasons=("stop",) * request.n)

    def _write(self, request: LMRequest) -> str:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LMUnavailable(f"{self.name}: cannot create the directory: {exc.strerror}") from exc
        digest = hashlib.sha256(f"{request.system}\0{request.user}\0{request.tag}".encode()).hexdigest()[:8]
        with self._lock:
            while True:
                request_id = f"{next(self._counter):04d}-{digest}"
                if not (self.directory / f"{request_id}.request.json").exists():
                    break
        names = [f"{request_id}.answer-{k}.md" for k in range(request.n)]
        payload = {
            "id": request_id,
            "system": request.system,
            "user": request.user,
            "n": request.n,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "tag": request.tag,
            "answer_files": names,
        }
        readable = (
            f"# LM request {request_id}\n\n"
            f"Write {request.n} answer{'s' if request.n > 1 else ''}, one per file: {', '.join(names)}\n"
            f"(in this directory; write to a temporary name and rename it when done).\n\n"
            f"## System\n\n{request.system}\n\n## User\n\n{request.user}\n"
        )
        try:
            _write_atomic(self.directory / f"{request_id}.md", readable)
            _write_atomic(self.directory / f"{request_id}.request.json", json.dumps(payload, indent=2))
        except OSError as exc:
            raise LMUnavailable(f"{self.name}: cannot write the request: {exc.strerror}") from exc
        return request_id

    def _wait_for(self, path: Path, started: float) -> str:
        last: tuple[int, int] | None = None
        while True:
            try:
                stat = path.stat()
                seen: tuple[int, int] | None = (stat.st_size, stat.st_mtime_ns)
            except FileNotFoundError:
                seen = None
            if seen is not None and seen == last:
                try:
                    return path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise LMUnavailable(f"{self.name}: cannot read {path.name}: {exc}") from exc
            last = seen
            if time.monotonic() - started > self._timeout_s:
                raise LMUnavailable(f"{self.name}: no answer in {path} within {self._timeout_s:g} s")
            time.sleep(self._poll_s)


@dataclass(frozen=True)
class PendingRequest:
    """A request in a manual queue with answers still missing."""

    id: str
    tag: str
    prompt_file: Path
    missing: tuple[Path, ...]
    created_at: float


def pending(directory: Path) -> list[PendingRequest]:
    """The requests in ``directory`` that still miss an answer file, oldest first."""
    found: list[PendingRequest] = []
    for path in sorted(directory.glob("*.request.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            names = [str(name) for name in payload["answer_files"]]
            created = path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a request this backend wrote
        missing = tuple(directory / name for name in names if not (directory / name).exists())
        if missing:
            request_id = str(payload.get("id", path.name.removesuffix(".request.json")))
            found.append(PendingRequest(request_id, str(payload.get("tag", "")), directory / f"{request_id}.md",
                                        missing, created))
    return sorted(found, key=lambda request: (request.created_at, request.id))


def write_answer(path: Path, text: str) -> None:
    """Store an answer file atomically (the backend never reads half of it)."""
    _write_atomic(path, text)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
