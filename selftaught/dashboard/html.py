"""The dashboard's rendering: a Jinja2 environment with autoescaping on, and the data pages hand it.

Pages are templates under ``templates/``; Python code passes them plain data (text, numbers,
``Cell``s, links as URLs) and never builds markup, so every stored string (LM answers, program
sources, reasons, task names) is escaped by the template engine, in text and in (always quoted)
attribute values alike, unless a template says otherwise, which none does. Ids in URLs are
percent-quoted. Pages carry no scripts: the Content-Security-Policy the server sends forbids
them, so even a missed escape could not run code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = ["STYLE", "Cell", "NotFound", "Pager", "PagerLinks", "render", "run_url"]

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #222; }
header { background: #24292f; color: #fff; padding: 0.5em 1.2em; }
header a { color: #fff; text-decoration: none; font-weight: 600; margin-right: 1.2em; }
main { padding: 0.5em 1.2em 2em; max-width: 1300px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.6em; overflow-x: auto; font-size: 12.5px;
      white-space: pre-wrap; word-break: break-word; }
.add { color: #116329; background: #dafbe1; display: block; }
.del { color: #82071e; background: #ffebe9; display: block; }
.hunk { color: #6639ba; display: block; }
.adopted > .node { background: #fff8c5; border-left: 4px solid #bf8700; padding-left: 4px; font-weight: 600; }
ul.lineage, ul.lineage ul { list-style: none; padding-left: 1.3em; border-left: 1px dotted #bbb; }
.status-running { color: #0969da; font-weight: 600; }
.status-failed { color: #cf222e; font-weight: 600; }
.status-interrupted { color: #9a6700; font-weight: 600; }
.muted { color: #6e7781; }
.pager a, .pager span { margin-right: 0.8em; }
.tag { background: #ddf4ff; border-radius: 8px; padding: 1px 7px; margin-right: 4px; font-size: 12px; }
svg.chart { border: 1px solid #d0d7de; background: #fff; }
form.compare select { max-width: 22em; }
"""


@dataclass(frozen=True)
class Cell:
    """A table cell: ``text`` (always escaped), right-aligned when ``numeric``, a link when ``href``
    is set, a ``<span class=css>`` when ``css`` is. A list of cells in one table cell shows them in a row."""

    text: str
    numeric: bool = False
    href: str = ""
    css: str = ""


@dataclass(frozen=True)
class PagerLinks:
    """What a pager shows: where we are, and (text, URL) links to the first, previous, next and last pages."""

    summary: str
    links: list[tuple[str, str]]


@dataclass(frozen=True)
class Pager:
    """Page ``page`` (from 1) of ``total`` rows, ``size`` to a page."""

    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def links(self, base_url: str, **query: str | int) -> PagerLinks:
        """The pager for ``base_url`` (no query string of its own) with ``query`` kept on every link."""

        def to(page: int, text: str) -> tuple[str, str]:
            return text, base_url + "?" + urlencode({**query, "page": page})

        links = []
        if self.page > 1:
            links += [to(1, "« first"), to(self.page - 1, "‹ previous")]
        if self.page < self.pages:
            links += [to(self.page + 1, "next ›"), to(self.pages, "last »")]
        return PagerLinks(f"page {self.page} of {self.pages} ({self.total:,} rows)", links)


def run_url(run_id: str, *rest: str | int, **query: str | int) -> str:
    """``/runs/<run_id>/<rest...>?<query>`` with every part percent-quoted."""
    path = "/runs/" + quote(run_id, safe="") + "".join("/" + quote(str(part), safe="") for part in rest)
    return path + ("?" + urlencode(query) if query else "")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _px(value: float) -> str:
    return f"{value:.1f}"


_ENV = Environment(
    loader=PackageLoader("selftaught.dashboard", "templates"),
    autoescape=True,  # every template, whatever its name: stored text is escaped unless a template says not
    undefined=StrictUndefined,  # a misspelt name fails the test suite instead of rendering as nothing
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["px"] = _px
_ENV.globals["run_url"] = run_url


def render(template: str, title: str, refresh_s: int | None = None, **context: Any) -> str:
    """The page ``template`` (a file under ``templates/``) titled ``title``, reloading every
    ``refresh_s`` seconds if given, rendered with ``context``. A lone surrogate in stored text (it
    cannot be sent as UTF-8) shows as U+FFFD instead of failing the page."""
    page = _ENV.get_template(template).render(title=title, refresh_s=refresh_s, **context)
    return _SURROGATE.sub("\ufffd", page)


class NotFound(Exception):
    """Raised by a page for an unknown run, program or call; the server answers 404."""
