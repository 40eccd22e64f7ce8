"""The dashboard's HTTP server: stdlib ``ThreadingHTTPServer``, GET only, read-only store, strict headers.

Why the standard library: the dashboard is a handful of read-only HTML pages, so a web framework
would add an attack surface for nothing; pages are rendered on the server from Jinja2 templates with
autoescaping on (``html.render``), no JS build.
Each request opens its own read-only connection (one consistent WAL snapshot, no shared state
between threads) and closes it. Every answer carries a Content-Security-Policy that forbids
scripts, frames and foreign resources. Unknown ids answer 404; a bug answers a plain 500 page and
is logged, never a traceback in the browser.

Bound to 127.0.0.1 by default; any other address needs ``allow_remote=True`` and logs a warning,
because the pages show prompts, programs and LM output to whoever can reach the port.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from selftaught.dashboard.html import STYLE, NotFound, render
from selftaught.dashboard.pages_events import events_page
from selftaught.dashboard.pages_lm import lm_call_page, lm_calls_page
from selftaught.dashboard.pages_program import compare_page, program_page
from selftaught.dashboard.pages_runs import run_page, runs_page
from selftaught.errors import ConfigError, StoreError
from selftaught.store.reader import StoreReader

__all__ = ["CSP", "DEFAULT_HOST", "DEFAULT_PORT", "DashboardServer", "make_server", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class DashboardServer(ThreadingHTTPServer):
    """Serves the pages of the run store at ``db_path``."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], db_path: Path, log: Callable[[str], None]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.db_path = db_path
        self.log = log
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


def _int(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def _route(db: StoreReader, path: str, query: dict[str, list[str]]) -> str:
    """The page at ``path``; NotFound for anything else."""
    parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    page = _int(query.get("page", ["1"])[0]) or 1
    if not parts:
        return runs_page(db)
    if parts[0] != "runs" or len(parts) < 2:
        raise NotFound(path)
    run_id, rest = parts[1], parts[2:]
    if not rest:
        return run_page(db, run_id)
    if rest[0] == "programs" and len(rest) == 2 and (program_id := _int(rest[1])) is not None:
        return program_page(db, run_id, program_id, page)
    if rest == ["lm"]:
        return lm_calls_page(db, run_id, page)
    if rest == ["events"]:
        return events_page(db, run_id, page, query.get("kind", [""])[0])
    if rest[0] == "lm" and len(rest) == 2 and (call_id := _int(rest[1])) is not None:
        return lm_call_page(db, run_id, call_id)
    if rest == ["compare"]:
        return compare_page(db, run_id, _int(query.get("a", [""])[0]), _int(query.get("b", [""])[0]))
    raise NotFound(path)


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "selftaught-dashboard"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        url = urlsplit(self.path)
        if url.path == "/style.css":
            self._send(HTTPStatus.OK, STYLE, "text/css; charset=utf-8", send_body)
            return
        try:
            status, body = HTTPStatus.OK, self._page(url.path, parse_qs(url.query))
        except NotFound as exc:
            status = HTTPStatus.NOT_FOUND
            body = render("message.html", title="not found", heading="Not found", message=str(exc))
        except Exception:  # a bug must not show a traceback to the browser; it goes to the log
            self.server.log(f"dashboard: error on {self.path!r}:\n{traceback.format_exc()}")
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body = render("message.html", title="error", heading="Something went wrong",
                          message="The error was logged by the server.")
        self._send(status, body, "text/html; charset=utf-8", send_body)

    def _page(self, path: str, query: dict[str, list[str]]) -> str:
        try:
            db = StoreReader.open(self.server.db_path)
        except StoreError as exc:
            if path.strip("/"):
                raise NotFound(str(exc)) from exc
            return render("runs.html", title="runs", rows=[], missing=str(exc), refresh_s=None)
        with db, db.snapshot():  # one snapshot for the whole page while a run keeps writing
            return _route(db, path, query)

    def _send(self, status: HTTPStatus, body: str, content_type: str, send_body: bool) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
        self.server.log(f"dashboard: {self.address_string()} {format % args}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(
    db_path: Path | str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_remote: bool = False,
    log: Callable[[str], None] = _stderr,
) -> DashboardServer:
    """A bound, not yet serving, dashboard over the store at ``db_path`` (port 0 picks a free one).

    ConfigError when ``host`` is not a loopback address and ``allow_remote`` is False, or when the
    address cannot be bound. A store that does not exist yet is fine: the pages say so until it does.
    """
    if not _is_loopback(host):
        if not allow_remote:
            raise ConfigError(f"refusing to serve the dashboard on {host}: it is reachable from other machines; "
                              "pass --allow-remote to do it anyway")
        log(f"warning: the dashboard on {host} has no authentication and shows every prompt, program and "
            "LM response to anyone who can reach it")
    try:
        return DashboardServer((host, port), Path(db_path), log)
    except OSError as exc:
        raise ConfigError(f"cannot serve the dashboard on {host}:{port}: {exc}") from exc


def serve(
    db_path: Path | str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_remote: bool = False,
    log: Callable[[str], None] = _stderr,
) -> None:
    """Serve the dashboard until interrupted (KeyboardInterrupt propagates after the socket is closed)."""
    server = make_server(db_path, host, port, allow_remote, log)
    log(f"selftaught dashboard on {server.url} (read-only; Ctrl-C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
