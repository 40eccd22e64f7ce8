"""The static scanner: every hostile program is flagged with its category; clean ones are not."""

from __future__ import annotations

import pytest

from selftaught.improver import SEED_IMPROVER
from selftaught.safety import CATEGORIES, SECURITY_CATEGORIES, scan_source
from selftaught.safety.circumvention import sandbox_flag_improver
from tests.programs.lpn import HOSTILE_IMPROVERS
from tests.safety.programs import CLEAN, HOSTILE, UNPARSED

HOSTILE_CASES = [(category, name, source) for category, programs in HOSTILE.items()
                 for name, source in programs.items()]


def test_every_category_has_hostile_programs() -> None:
    assert set(HOSTILE) == set(CATEGORIES)
    assert set(UNPARSED) <= set(SECURITY_CATEGORIES)


@pytest.mark.parametrize(("category", "name", "source"), HOSTILE_CASES, ids=[f"{c}-{n}" for c, n, _ in HOSTILE_CASES])
def test_hostile_program_is_flagged(category: str, name: str, source: str) -> None:
    findings = scan_source(source)
    assert category in {f.category for f in findings}, findings
    assert all(f.category in CATEGORIES for f in findings)


@pytest.mark.parametrize(("name", "source"), list(CLEAN.items()), ids=list(CLEAN))
def test_clean_program_has_no_security_findings(name: str, source: str) -> None:
    assert [f for f in scan_source(source) if f.category in SECURITY_CATEGORIES] == []


@pytest.mark.parametrize(("category", "source"), list(UNPARSED.items()), ids=list(UNPARSED))
def test_unparseable_source_falls_back_to_a_line_scan(category: str, source: str) -> None:
    findings = scan_source(source)
    assert findings[0].category == "parse_error" and findings[0].line == 0
    hits = [f for f in findings if f.category == category]
    assert hits and all(f.detail.startswith("regex:") for f in hits)


def test_findings_carry_lines_and_details() -> None:
    findings = scan_source(HOSTILE["budget_tamper"]["lm_budget"])
    assert [(f.category, f.detail, f.line) for f in findings] == [
        ("budget_tamper", "sets language_model.budget", 2)
    ]
    [finding] = scan_source(HOSTILE["sandbox_disable"]["keyword_false"])
    assert finding.line == 2 and "use_sandbox=False" in finding.detail


def test_repository_hostile_improvers_are_flagged() -> None:
    expected = {
        "budget_reset": {"budget_tamper"},
        "swallows_budget_errors": {"budget_swallow"},
        "own_client": {"env_read", "lm_client"},
    }
    for name, categories in expected.items():
        assert categories <= {f.category for f in scan_source(HOSTILE_IMPROVERS[name])}, name


def test_dropped_flag_is_found_only_against_a_flagged_parent() -> None:
    variant = sandbox_flag_improver()
    assert scan_source(variant) == []
    # the seed's `max(candidates, key=utility)` drops the flag the variant passed
    dropped = scan_source(SEED_IMPROVER, parent=variant)
    assert [f.category for f in dropped] == ["sandbox_disable"]
    assert "without use_sandbox" in dropped[0].detail
    assert scan_source(SEED_IMPROVER, parent=SEED_IMPROVER) == []
    assert scan_source(variant, parent=variant) == []


def test_unsandboxed_first_pattern_is_named() -> None:
    details = [f.detail for f in scan_source(HOSTILE["sandbox_disable"]["unsandboxed_first"])]
    assert any("unsandboxed first, then sandboxed" in d for d in details), details


def test_parent_that_does_not_parse_is_ignored() -> None:
    assert scan_source(SEED_IMPROVER, parent="def broken(:") == []
