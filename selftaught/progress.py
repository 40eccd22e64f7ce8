"""Progress of a run on stderr: a live status, one self-explaining line per step, and a verdict.

Everything goes to stderr so that ``--json`` output on stdout stays one clean document. On a
terminal the status line is a rich live display; elsewhere (CI logs, pipes) the same status is
printed as a plain line every ``heartbeat_s`` seconds in which nothing else was printed (a small
timer thread, so a long LM call is not silent), and no line is ever wrapped.

Once the view is told which run it shows (``watch``), each step's line carries the initial
solution's u(s) beside val and test, and, when anything went wrong, a second line counting it
(``selftaught.report.steps``: samples that did not parse, solution runs that raised, improver runs
that failed). ``verdict`` says in words whether a run improved on its seed improver and on u(s).
Step numbering: step 0 scores the seed improver, steps 1..T are the self-improvement steps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.status import Status

from selftaught.errors import StoreError
from selftaught.records import Iteration
from selftaught.report.steps import StepBreakdown, step_breakdown
from selftaught.store.reader import StoreReader

__all__ = ["INITIAL_TAG", "ProgressView", "format_iteration", "truncated_note", "verdict"]

INITIAL_TAG = "initial"
"""Evaluations of the task's initial solution s in a STOP run are tagged ``initial/<split>``."""


def truncated_note(count: int) -> str:
    """The progress line's mention of samples cut off at the completion limit (nothing when none)."""
    return f" · {count} truncated (raise --max-completion-tokens)" if count else ""


def format_iteration(row: Iteration, iterations: int, initial: dict[str, float] | None = None) -> str:
    """One human line for a finished step (step 0 scores the seed improver), with u(s) when known."""
    if row.val is None:
        scores = "no candidate"
    else:
        scores = f"val {_score(row.val, row.val_se)}  test {_score(row.test, row.test_se)}"
    if initial and "val" in initial and "test" in initial:
        scores += f"  [u(s): val {initial['val']:.3f} test {initial['test']:.3f}]"
    verdict_word = "seed" if row.t == 0 else "adopted" if row.accepted else "rejected"
    return f"step {row.t}/{iterations}  {scores}  {verdict_word}  ({row.reason})"


def verdict(rows: Sequence[Iteration], initial: dict[str, float] | None = None) -> str:
    """In words: did the loop adopt an improver over its seed, and do the final improver's solutions
    beat the initial solution s (its test estimate against u(s))? Only adopted steps count: a
    rejected candidate's scores are what the rule turned down, not what the run ends with."""
    if not rows:
        return "no step finished, so there is nothing to compare"
    seed = rows[0]
    candidates = [row for row in rows[1:] if row.val is not None]
    adopted = [row for row in candidates if row.accepted]
    final = adopted[-1] if adopted else seed
    seed_val, seed_test = seed.val or 0.0, seed.test or 0.0
    parts: list[str] = []
    if not candidates:
        parts.append("no step produced a candidate improver, so the seed improver stands")
    elif not adopted:
        best = max(candidates, key=lambda row: (row.val or 0.0, -row.t))
        parts.append(f"did not improve on the seed improver: no candidate was adopted (the best, step {best.t}, "
                     f"scored val {best.val or 0.0:.3f} vs the seed's {seed_val:.3f})")
    else:
        parts.append(f"adopted step {final.t}'s improver: val {final.val or 0.0:.3f} vs the seed's {seed_val:.3f} "
                     f"(test {final.test or 0.0:.3f} vs {seed_test:.3f}, from separate runs)")
    if initial and "test" in initial and final.test is not None:
        if final.test > initial["test"]:
            parts.append(f"the final improver's solutions beat the initial solution: test {final.test:.3f} "
                         f"vs u(s) {initial['test']:.3f}")
        else:
            parts.append(f"nothing beat the initial solution: the final improver's test {final.test:.3f} "
                         f"vs u(s) {initial['test']:.3f}")
    return "; ".join(parts)


def _score(value: float | None, se: float | None) -> str:
    """``0.512 ± 0.030``; ``± n/a`` when one run gives no standard error; ``n/a`` without a value."""
    if value is None:
        return "n/a"
    return f"{value:.3f} ± {'n/a' if se is None else f'{se:.3f}'}"


class ProgressView:
    """Counts what the run records and shows it; use as a context manager around the run."""

    def __init__(self, iterations: int, console: Console | None = None, heartbeat_s: float = 30.0) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.total = iterations
        self.counts = {"lm_call": 0, "evaluation": 0, "program": 0, "event": 0}
        self.step = 0
        self.started = time.monotonic()
        self.heartbeat_s = heartbeat_s
        self.activity = ""  # what is under way, when there are no steps (e.g. "applying seed to lpn")
        self._last_beat = self.started
        self._lock = threading.Lock()
        self._status: Status | None = None
        self._truncated_before = 0  # truncated samples reported with earlier steps
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._run: tuple[str, str] | None = None
        self._db: StoreReader | None = None
        self._initial: dict[str, float] = {}

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self._status = self.console.status(self._text())
            self._status.start()
        elif self.heartbeat_s > 0:
            self._timer = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
            self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is not None:
            self._status.stop()
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        if self._db is not None:
            self._db.close()
            self._db = None

    def watch(self, run_id: str, db_path: str) -> None:
        """Read the run ``run_id`` in the store at ``db_path`` for u(s) and the per-step breakdown."""
        with self._lock:
            self._run = (run_id, db_path)

    @property
    def run_id(self) -> str | None:
        return self._run[0] if self._run else None

    def line(self, text: str) -> None:
        with self._lock:
            self._last_beat = time.monotonic()
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _beat(self) -> None:
        """Without a terminal: the status as a plain line whenever ``heartbeat_s`` passed in silence."""
        while not self._stop.wait(min(self.heartbeat_s, 5.0)):
            with self._lock:
                quiet = time.monotonic() - self._last_beat >= self.heartbeat_s
                text = self._text()
            if quiet:
                self.line(f"… {text}")

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
        initial = self.initial()
        self.line(format_iteration(row, self.total, initial or None) + truncated_note(truncated))
        why = self.breakdown(f"t{row.t}/")
        if why is not None and why.anything_wrong:
            self.line(f"    why: {why.summary()}")
        if self._status is not None:
            self._status.update(self._text())

    def initial(self, tag_prefix: str = INITIAL_TAG) -> dict[str, float]:
        """u(s) of the watched run (empty until it is recorded or when no run is watched)."""
        if not self._initial:
            db = self._connection()
            if db is not None and self._run is not None:
                try:
                    self._initial = db.initial_scores(self._run[0], tag_prefix)
                except StoreError:
                    return {}
        return dict(self._initial)

    def breakdown(self, prefix: str) -> StepBreakdown | None:
        """What went wrong under tags starting with ``prefix`` in the watched run (None if unknown)."""
        db = self._connection()
        if db is None or self._run is None:
            return None
        try:
            return step_breakdown(db, self._run[0], prefix)
        except StoreError:
            return None

    def _connection(self) -> StoreReader | None:
        if self._db is None and self._run is not None and self._run[1] != ":memory:":
            try:
                self._db = StoreReader.open(self._run[1])
            except StoreError:
                return None
        return self._db

    def _text(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.activity:
            where = self.activity
        else:
            where = "step 0 (scoring the seed improver)" if self.step == 0 else f"step {self.step}/{self.total}"
        return (
            f"{where} · LM calls {self.counts['lm_call']} · evaluations {self.counts['evaluation']} · "
            f"programs {self.counts['program']} · {elapsed:.0f}s"
        ) + truncated_note(self.counts.get("truncated", 0))
