"""``write_report`` writes PNG and SVG figures and one self-contained, escaped HTML page."""

import re
from pathlib import Path

import pytest

from selftaught.errors import ConfigError, StoreError
from selftaught.report import REPORT_NAME, write_report
from tests.report.builders import build_store

FIGURES = ["meta_utility", "cost", "safety"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("report")
    built = build_store(tmp / "runs")
    page = write_report(built.db_path, [built.finished, built.running, built.empty], tmp / "out")
    return page, page.read_text(encoding="utf-8")


def test_every_figure_is_written_as_png_and_svg(report: tuple[Path, str]) -> None:
    page, _ = report
    assert page.name == REPORT_NAME
    for name in FIGURES:
        png = page.parent / f"{name}.png"
        svg = page.parent / f"{name}.svg"
        assert png.read_bytes().startswith(b"\x89PNG")
        assert "<svg" in svg.read_text(encoding="utf-8")


def test_the_page_is_self_contained(report: tuple[Path, str]) -> None:
    _, html = report
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert len(sources) == len(FIGURES)
    assert all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    assert "http://" not in html.replace('xmlns="http://www.w3.org', "") and "https://" not in html


def test_the_page_summarises_and_escapes(report: tuple[Path, str]) -> None:
    _, html = report
    assert "0.620 ± 0.020" in html  # val with its standard error
    assert "kept incumbent" in html and "No iterations recorded." in html
    assert "sandbox_disable" in html and "Wilson 95% interval" in html
    assert "No transfer results" in html
    assert "kept incumbent &lt;script&gt;window.__xss = 3&lt;/script&gt;" in html


def test_a_single_empty_run_still_reports(tmp_path: Path) -> None:
    built = build_store(tmp_path / "runs")
    page = write_report(built.db_path, [built.empty], tmp_path / "out")
    html = page.read_text(encoding="utf-8")
    assert "No iterations recorded." in html and "No LM calls recorded." in html
    assert (tmp_path / "out" / "safety.svg").is_file()


def test_unknown_runs_and_no_runs_are_errors(tmp_path: Path) -> None:
    built = build_store(tmp_path / "runs")
    with pytest.raises(StoreError, match="no run 'nope'"):
        write_report(built.db_path, [built.finished, "nope"], tmp_path / "out")
    with pytest.raises(ConfigError):
        write_report(built.db_path, [], tmp_path / "out")
    with pytest.raises(StoreError, match="no run store"):
        write_report(tmp_path / "missing.db", ["x"], tmp_path / "out")
