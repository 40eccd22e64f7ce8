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
never run. ``truncated`` counts samples cut off at the token limit (their recorded finish reason is
``length``). The store is read through ``StoreReader``.

Left out: per-instance failures inside an evaluation that partly ran (the first failure's reason
stands for the evaluation).
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field

from selftaught.proxy.helpers import extract_code
from selftaught.store.reader import StoreReader

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


def step_breakdown(db: StoreReader, run_id: str, prefix: str) -> StepBreakdown:
    """What happened under call-site tags starting with ``prefix`` (e.g. ``t1/``) in ``run_id``."""
    samples = no_code = unparsable = truncated = 0
    for call in db.lm_samples(run_id, prefix):
        samples += len(call.texts)
        truncated += sum(1 for reason in call.finish_reasons if reason == "length")
        for text in call.texts:
            code = extract_code(str(text))
            if code is None:
                no_code += 1
            elif not _parses(code):
                unparsable += 1
    failures: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    evaluations = 0
    for evaluation in db.solution_evaluations(run_id, prefix):
        evaluations += 1
        if evaluation.failed and evaluation.reason:
            what, name = classify_failure(evaluation.reason)
            failures[what] += 1
            if what == "raised":
                errors[name] += 1
    improver_errors: Counter[str] = Counter()
    for detail in db.event_details(run_id, "improver_failed", prefix):
        reason = detail.split(": ", 1)[1] if ": " in detail else detail
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
