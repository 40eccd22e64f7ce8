"""A dashboard served on a free loopback port over a store built by ``tests.report.builders``."""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import quote

import pytest

from selftaught.dashboard import DashboardServer, make_server
from tests.report.builders import HOSTILE, Built, HostileBuilt, build_hostile_store, build_store


@dataclass
class Page:
    status: int
    headers: Message
    text: str


def fetch(base_url: str, path: str, method: str = "GET") -> Page:
    """The answer to one request, error statuses included."""
    request = urllib.request.Request(base_url.rstrip("/") + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return Page(answer.status, answer.headers, answer.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        with exc:
            return Page(exc.code, exc.headers, exc.read().decode("utf-8"))


@dataclass
class Served:
    url: str
    built: Built
    log: list[str]

    def get(self, path: str, method: str = "GET") -> Page:
        return fetch(self.url, path, method)


def serve_in_thread(db_path: Path, log: list[str]) -> tuple[DashboardServer, threading.Thread]:
    server = make_server(db_path, "127.0.0.1", 0, log=log.append)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


@contextlib.contextmanager
def serving(db_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A dashboard over ``db_path`` in a thread: its URL and its log, shut down afterwards."""
    log: list[str] = []
    server, thread = serve_in_thread(db_path, log)
    try:
        yield server.url, log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    built = build_store(tmp_path_factory.mktemp("dash") / "runs")
    with serving(built.db_path) as (url, log):
        yield Served(url, built, log)


@dataclass
class HostileServed:
    url: str
    built: HostileBuilt
    log: list[str]

    def get(self, path: str) -> Page:
        return fetch(self.url, path)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServed]:
    """A dashboard over ``build_hostile_store``: every free-text field holds markup."""
    built = build_hostile_store(tmp_path_factory.mktemp("hostile") / "runs")
    with serving(built.db_path) as (url, log):
        yield HostileServed(url, built, log)


def hostile_paths(built: HostileBuilt) -> list[str]:
    """Every page of the hostile store: runs, both run pages, each program, LM calls, events (with a
    filter on a hostile kind), a comparison, and a 404 naming a hostile run id."""
    stop, improve = quote(built.stop), quote(built.improve)
    return [
        "/", f"/runs/{stop}", f"/runs/{improve}",
        *(f"/runs/{quote(run)}/programs/{program}" for run, program in built.programs),
        f"/runs/{stop}/lm", *(f"/runs/{stop}/lm/{c}" for c in built.calls),
        f"/runs/{stop}/events", f"/runs/{stop}/events?kind={quote(HOSTILE)}", f"/runs/{improve}/events",
        f"/runs/{stop}/compare?a={built.programs[0][1]}&b={built.programs[1][1]}",
        "/runs/" + quote(HOSTILE, safe=""),
    ]
