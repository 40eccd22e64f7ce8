"""What went wrong in one step of a run, counted from the store: the one-line "why" of progress lines.

Everything is read back from what the run recorded under the step's call-site tags (``t<step>/``,
or any prefix): the LM samples (did each hold a fenced code block, and did that block parse?),
the solution evaluations (did the code run, raise, time out or return the wrong output?) and the
improver runs that failed. ``StepBreakdown.summary()`` gives a line such as
``8 samples: 6 did not parse, 1 had no code block; 2 solution runs raised (NameError); 1 improver run failed``.

A sample's code is its largest fenced block as ``extract_code`` finds it (the very parser the
``helpers`` module and the seed improver carry, from ``selftaught.proxy``), so a sample counts as
holding code exactly when an improver using it got code out of it; a sample cut off inside its
only block has none (and counts as truncated too). The code is only compiled with ``ast.parse``,
never run. ``truncated`` counts samples cut off at the token limit when
the store records a finish reason per sample (column ``finish_reasons`` of ``lm_calls``, a JSON list);
stores without it count none.

Left out: per-instance failures inside an evaluation that partly ran (the first failure's reason
stands for the evaluation).
"""

from __future__ import annotations

import ast
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field

from selftaught.proxy.helpers import extract_code

__all__ = ["StepBreakdown", "classify_failure", "step_breakdown"]


@dataclass(frozen=True)
class StepBreakdown:
    """Counts of what happened under one tag prefix (a step of a run, or a whole command)."""

    samples: int = 0
    no_code: int = 0
    unparsable: int = 0
    truncated: int = 0
    evaluations: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # failure class -> evaluations
    errors: dict[str, int] = field(default_factory=dict)  # exception name -> evaluations that raised it
    improver_failures: int = 0
    improver_errors: dict[str, int] = field(default_factory=dict)

    @property
    def anything_wrong(self) -> bool:
        return bool(self.no_code or self.unparsable or self.truncated or self.failures or self.improver_failures)

    def summary(self) -> str:
        """One line naming every kind of failure with its count; "" when nothing went wrong."""
        parts: list[str] = []
        sample_parts = [f"{count} {what}" for count, what in (
            (self.unparsable, "did not parse"), (self.no_code, "had no code block"),
            (self.truncated, "hit the token limit")) if count]
        if sample_parts:
            parts.append(f"{self.samples} samples: " + ", ".join(sample_parts))
        if self.failures:
            runs = [f"{count} {what}" + (f" ({_top(self.errors)})" if what == "raised" and self.errors else "")
                    for what, count in sorted(self.failures.items(), key=lambda item: -item[1])]
            parts.append(f"of {self.evaluations} solution runs: " + ", ".join(runs))
        if self.improver_failures:
            plural = "s" if self.improver_failures != 1 else ""
            parts.append(f"{self.improver_failures} improver run{plural} failed ({_top(self.improver_errors)})")
        return "; ".join(parts)


def _top(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(name if count == 1 else f"{name} x{count}" for name, count in ordered[:3])
    return shown + (", ..." if len(ordered) > 3 else "")


def classify_failure(reason: str) -> tuple[str, str]:
    """(failure class, exception name) of an evaluation's or improver run's failure reason."""
    text = reason.strip()
    if text.startswith(("SyntaxError", "IndentationError", "TabError", "does not compile")):
        return "did not parse", "SyntaxError"
    if text.startswith(("timeout", "timed out")) or "TimeoutError" in text.split(":", 1)[0]:
        return "timed out", "timeout"
    if text.startswith(("invalid output", "unserializable output")):
        return "returned the wrong output", ""
    if text.startswith("entry ") and "not defined" in text:
        return "lacked the entry function", ""
    if "BudgetExceeded" in text:
        return "ran over budget", "BudgetExceeded"
    head = text.removeprefix("error while loading: ").split(":", 1)[0].strip()
    name = head if head.isidentifier() else "error"
    return "raised", name


def step_breakdown(db: sqlite3.Connection, run_id: str, prefix: str) -> StepBreakdown:
    """What happened under call-site tags starting with ``prefix`` (e.g. ``t1/``) in ``run_id``."""
    samples = no_code = unparsable = truncated = 0
    finish_column = _has_column(db, "lm_calls", "finish_reasons")
    columns = "responses, finish_reasons" if finish_column else "responses, NULL"
    for responses, finishes in db.execute(
        f"SELECT {columns} FROM lm_calls WHERE run_id=? AND substr(tag, 1, ?)=?", (run_id, len(prefix), prefix)
    ):
        texts = _json_list(responses)
        samples += len(texts)
        truncated += sum(1 for reason in _json_list(finishes) if reason == "length")
        for text in texts:
            code = extract_code(str(text))
            if code is None:
                no_code += 1
            elif not _parses(code):
                unparsable += 1
    failures: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    evaluations = 0
    for failed, reason in db.execute(
        "SELECT e.failed, e.reason FROM evaluations e JOIN programs p ON p.id = e.program_id"
        " WHERE e.run_id=? AND substr(e.tag, 1, ?)=? AND p.kind='solution' AND e.task NOT LIKE 'meta:%'",
        (run_id, len(prefix), prefix),
    ):
        evaluations += 1
        if failed and reason:
            what, name = classify_failure(str(reason))
            failures[what] += 1
            if what == "raised":
                errors[name] += 1
    improver_errors: Counter[str] = Counter()
    for (detail,) in db.execute(
        "SELECT DISTINCT detail FROM events WHERE run_id=? AND kind='improver_failed' AND substr(detail, 1, ?)=?",
        (run_id, len(prefix), prefix),
    ):
        reason = str(detail).split(": ", 1)[1] if ": " in str(detail) else str(detail)
        what, name = classify_failure(reason)
        improver_errors[name or what] += 1
    return StepBreakdown(samples, no_code, unparsable, truncated, evaluations, dict(failures), dict(errors),
                         sum(improver_errors.values()), dict(improver_errors))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _json_list(text: object) -> list[object]:
    if not isinstance(text, str):
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _has_column(db: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))
