"""Markup in stored text reaches every dashboard page and the report only as text.

The store (``build_hostile_store``) puts a script, an attribute breakout with an event handler, a
``</textarea></title>`` and an SVG with ``onload`` into every free-text field a run records, and
lone surrogates where the store keeps them. Each page is parsed the way a browser tokenises it
(``html.parser``): no element or attribute came from the data, every attribute value is quoted,
and the hostile text is there for a reader, verbatim, as text. Surrogates show as U+FFFD.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from selftaught.report import write_report
from tests.dashboard.conftest import HostileServed, hostile_paths
from tests.report.builders import ATTACKS, HOSTILE, build_hostile_store

_FOREIGN = {"script", "img", "textarea", "iframe", "object", "embed", "base", "link", "style"}
_START_TAG = re.compile(r'<[a-zA-Z][\w-]*(?:\s+[\w:-]+(?:="[^"<>]*")?)*\s*/?>')  # every value double-quoted
_REPORT_FIGURES = {"meta-utility per iteration", "LM cost and tokens per iteration", "safety finding rates"}


class Parsed(HTMLParser):
    """The elements, attributes and text of a page, as a browser's tokeniser splits them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.raw_tags: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self.raw_tags.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def parse(html: str) -> Parsed:
    parsed = Parsed()
    parsed.feed(html)
    parsed.close()
    return parsed


def assert_inert(html: str, allowed: frozenset[str] = frozenset()) -> Parsed:
    """No element or attribute from the data; every attribute quoted; returns the parse."""
    assert "<script" not in html.lower() and "<textarea" not in html.lower()
    parsed = parse(html)
    foreign = [tag for tag, _ in parsed.tags if tag in _FOREIGN - allowed]
    assert not foreign, f"elements made from stored text: {foreign}"
    handlers = [(tag, name) for tag, attrs in parsed.tags for name, _ in attrs if name.startswith("on")]
    assert not handlers, f"event-handler attributes: {handlers}"
    unquoted = [raw for raw in parsed.raw_tags if not _START_TAG.fullmatch(raw)]
    assert not unquoted, f"start tags with an unquoted attribute value: {unquoted[:3]}"
    assert "\udcff" not in html
    return parsed


def test_every_page_shows_hostile_text_as_text(hostile: HostileServed) -> None:
    surrogate_pages = 0
    for path in hostile_paths(hostile.built):
        page = hostile.get(path)  # decoded as strict UTF-8: a lone surrogate could not have been sent
        assert page.status == (404 if path.startswith("/runs/%3C") else 200), path
        parsed = assert_inert(page.text, allowed=frozenset({"link"}))
        links = [attrs for tag, attrs in parsed.tags if tag == "link"]
        assert links == [[("rel", "stylesheet"), ("href", "/style.css")]]  # the page's own stylesheet only
        expected = ATTACKS[0] if page.status == 404 else HOSTILE
        assert expected in parsed.text, f"{path} does not show the stored text"
        surrogate_pages += "\ufffd" in page.text
    assert surrogate_pages >= 4  # LM call, events, the improve run's final scores, a program's evaluations
    assert not any("dashboard: error on" in line for line in hostile.log), hostile.log


def test_hostile_text_stays_in_its_attribute(hostile: HostileServed) -> None:
    """A status like ``"><img ...>`` is one class attribute's value, not a way out of it."""
    parsed = parse(hostile.get("/").text)
    classes = [value for tag, attrs in parsed.tags if tag == "span" for name, value in attrs if name == "class"]
    assert "status-" + HOSTILE in classes


def test_lm_answers_with_surrogates_render(hostile: HostileServed) -> None:
    built = hostile.built
    page = hostile.get(f"/runs/{built.stop}/lm/{built.calls[0]}")
    assert page.status == 200
    text = parse(page.text).text
    assert f"```python\n{HOSTILE}\n```\ufffd" in text  # the answer, verbatim, its surrogate replaced
    assert "Response 2 of 2 (cut off at the completion limit)" in text


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("hostile-report")
    built = build_hostile_store(tmp / "runs")
    return write_report(built.db_path, [built.stop, built.improve], tmp / "out").read_text(encoding="utf-8")


# Long hostile task names squeeze a figure's axes; matplotlib warns and draws it anyway.
@pytest.mark.filterwarnings("ignore:constrained_layout not applied")
def test_the_report_shows_hostile_text_as_text(report: str) -> None:
    parsed = assert_inert(report, allowed=frozenset({"img", "style"}))
    images = [dict(attrs) for tag, attrs in parsed.tags if tag == "img"]
    assert images and all(str(i["src"]).startswith("data:image/svg+xml;base64,") for i in images)
    assert {str(i["alt"]) for i in images} <= _REPORT_FIGURES | {"transfer: test score per task beside u(s)"}
    assert [tag for tag, _ in parsed.tags].count("style") == 1
    assert HOSTILE in parsed.text


def test_no_page_code_marks_text_as_safe() -> None:
    """Escaping stays the default: no template turns it off and no module builds markup to pass through."""
    root = Path(__file__).parents[2] / "selftaught"
    templates = [*(root / "dashboard" / "templates").glob("*.html"), *(root / "report" / "templates").glob("*.html")]
    assert len(templates) >= 10
    for path in templates:
        text = path.read_text()
        assert "|safe" not in text.replace(" ", "") and "autoescape" not in text, path
    for module in [*(root / "dashboard").glob("*.py"), root / "report" / "page.py"]:
        text = module.read_text()
        assert "Markup(" not in text and "autoescape=False" not in text, module
