"""Progress of a run on the terminal: a live status line and one line per finished step.

Everything goes to stderr so that ``--json`` output on stdout stays one clean document. On a
terminal the status line is a rich live display; elsewhere (CI logs, pipes) only plain lines.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console
from rich.status import Status

from selftaught.records import Iteration

__all__ = ["ProgressView", "format_iteration", "truncated_note"]


def truncated_note(count: int) -> str:
    """The progress line's mention of samples cut off at the completion limit (nothing when none)."""
    return f" · {count} truncated (raise --max-completion-tokens)" if count else ""


def format_iteration(row: Iteration, iterations: int) -> str:
    """One human line for a finished step (step 0 scores the seed improver)."""
    if row.val is None:
        scores = "no candidate"
    else:
        scores = f"val {_score(row.val, row.val_se)}  test {_score(row.test, row.test_se)}"
    verdict = "adopted" if row.accepted else "rejected"
    return f"step {row.t}/{iterations}  {scores}  {verdict}  ({row.reason})"


def _score(value: float | None, se: float | None) -> str:
    """``0.512 ± 0.030``; ``± n/a`` when one run gives no standard error; ``n/a`` without a value."""
    if value is None:
        return "n/a"
    return f"{value:.3f} ± {'n/a' if se is None else f'{se:.3f}'}"


class ProgressView:
    """Counts what the run records and shows it; use as a context manager around the run."""

    def __init__(self, iterations: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.total = iterations
        self.counts = {"lm_call": 0, "evaluation": 0, "program": 0, "event": 0}
        self.step = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._status: Status | None = None
        self._truncated_before = 0  # truncated samples reported with earlier steps

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self._status = self.console.status(self._text())
            self._status.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is not None:
            self._status.stop()

    def line(self, text: str) -> None:
        self.console.print(text, markup=False)

    def record(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if self._status is not None:
                self._status.update(self._text())

    def iteration(self, row: Iteration) -> None:
        with self._lock:
            self.step = row.t + 1  # the step now under way
            truncated = self.counts.get("truncated", 0) - self._truncated_before
            self._truncated_before += truncated
        self.line(format_iteration(row, self.total) + truncated_note(truncated))
        if self._status is not None:
            self._status.update(self._text())

    def _text(self) -> str:
        elapsed = time.monotonic() - self.started
        where = "scoring the seed improver" if self.step == 0 else f"step {self.step}/{self.total}"
        return (
            f"{where} · LM calls {self.counts['lm_call']} · evaluations {self.counts['evaluation']} · "
            f"programs {self.counts['program']} · {elapsed:.0f}s"
        ) + truncated_note(self.counts.get("truncated", 0))
