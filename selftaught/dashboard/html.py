"""HTML building blocks for the dashboard: the page layout, tables, pagers, links and the stylesheet.

Every piece of stored text goes through ``esc`` (``html.escape`` with quotes) before it reaches a
page; ids in URLs are percent-quoted. Pages carry no scripts: the Content-Security-Policy the
server sends forbids them, so even a missed escape could not run code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

__all__ = ["STYLE", "Cell", "NotFound", "Pager", "esc", "layout", "link", "pre", "run_url", "table"]

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
    """A table cell: ``html`` is already safe markup; ``numeric`` right-aligns it."""

    html: str
    numeric: bool = False


def esc(value: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return escape(str(value), quote=True)


def run_url(run_id: str, *rest: str | int, **query: str | int) -> str:
    """``/runs/<run_id>/<rest...>?<query>`` with every part percent-quoted."""
    path = "/runs/" + quote(run_id, safe="") + "".join("/" + quote(str(part), safe="") for part in rest)
    return path + ("?" + urlencode(query) if query else "")


def link(href: str, text: object) -> str:
    """An anchor whose visible text is escaped."""
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def pre(text: str, css_class: str = "") -> str:
    """Untrusted text (source, prompts, responses) shown verbatim and inert."""
    cls = f' class="{esc(css_class)}"' if css_class else ""
    return f"<pre{cls}>{esc(text)}</pre>"


def table(
    headers: Sequence[str] | None, rows: Sequence[Sequence[Cell | str]], empty: str = "Nothing here yet."
) -> str:
    """A table (no header row when ``headers`` is None); ``str`` cells are escaped, ``Cell`` cells are markup."""
    if not rows:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "" if headers is None else "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>"
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, Cell):
                cells.append(f'<td class="num">{cell.html}</td>' if cell.numeric else f"<td>{cell.html}</td>")
            else:
                cells.append(f"<td>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


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

    def html(self, base_url: str, **query: str | int) -> str:
        """Links to the first, previous, next and last pages; ``base_url`` has no query string."""

        def to(page: int, text: str) -> str:
            return link(base_url + "?" + urlencode({**query, "page": page}), text)

        parts = [f"<span>page {self.page} of {self.pages} ({self.total:,} rows)</span>"]
        if self.page > 1:
            parts += [to(1, "« first"), to(self.page - 1, "‹ previous")]
        if self.page < self.pages:
            parts += [to(self.page + 1, "next ›"), to(self.pages, "last »")]
        return '<p class="pager">' + " ".join(parts) + "</p>"


def layout(title: str, body: str, refresh_s: int | None = None) -> str:
    """A whole page: header with navigation, ``body`` (trusted markup) and, for live runs, a meta refresh."""
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'{refresh}<title>{esc(title)} · selftaught</title><link rel="stylesheet" href="/style.css"></head>'
        f'<body><header><a href="/">selftaught runs</a></header><main>{body}</main></body></html>'
    )


class NotFound(Exception):
    """Raised by a page for an unknown run, program or call; the server answers 404."""
