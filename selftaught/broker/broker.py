"""The trusted broker: runs untrusted jobs in the sandbox and answers their proxy calls.

It owns the LM, every budget counter, the task scorers and the recorder. A sandboxed improver
sees only proxies (their contract, checks included, is ``selftaught.proxy``): ``utility(solution)``
and ``language_model.batch_prompt/prompt`` become calls into ``_ImproverCalls.handle`` here, which
checks the budget, does the work and answers with plain data. Errors the improver caused (a spent
budget, a malformed call, a prompt the model cannot serve) are raised inside the improver. A
run-level cap (``RunCapExceeded``) is raised inside the improver too, so it can see why its call
failed, and every later call of that run raises it at once; once the job is over, ``improve``
raises it to the caller, whatever the improver returned. Other errors of the infrastructure (the
LM server is down) end the job and propagate to the caller unchanged.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from selftaught.broker import boundary
from selftaught.broker.budget import RunBudget
from selftaught.config import Budgets
from selftaught.errors import BudgetExceeded, PromptRejected, ProxyError, RunCapExceeded, SelftaughtError
from selftaught.lm.base import LanguageModel
from selftaught.proxy import (
    HELPERS_MODULE,
    IMPROVER_ENTRY,
    LMCall,
    UtilityCall,
    ends_in_open_block,
    improver_call,
    improver_remotes,
    parse_call,
)
from selftaught.records import STARTUP_TIMEOUT_S, Instance, Job, LMRequest, Outcome, Recorder, Split
from selftaught.sandbox.base import Sandbox
from selftaught.tasks.base import Task

__all__ = ["Broker", "Evaluation", "ImproverRun", "Utility"]


class Utility(Protocol):
    """A utility an improver optimises against: a description and a score for a solution.

    A utility whose calls are themselves improver runs (the meta-utility) says so with a true
    ``runs_improvers`` attribute: an improver run against it may then take one improver time
    limit per utility call it is allowed, on top of its own.
    """

    @property
    def description(self) -> str: ...

    def __call__(self, solution: str, tag: str) -> float: ...


@dataclass(frozen=True)
class Evaluation:
    """A solution scored on one split: the mean over instances (failures count as 0)."""

    score: float
    instances: int
    failed: int
    reason: str
    program_id: int


@dataclass(frozen=True)
class ImproverRun:
    """What one improver run returned: a solution, or None and the reason."""

    solution: str | None
    reason: str
    lm_calls: int
    utility_calls: int


# How a refusal by the sandbox (seccomp, read-only mounts, rlimits) shows up in a job's errors.
_DENIAL_MARKS = ("PermissionError", "Operation not permitted", "Read-only file system", "Permission denied")


class _Fatal(Exception):
    """Carries an infrastructure error out through the sandbox (deliberately not a SelftaughtError)."""

    def __init__(self, error: SelftaughtError) -> None:
        super().__init__(str(error))
        self.error = error


class Broker:
    """Runs solutions and improvers in ``sandbox``, scoring with tasks and calling ``lm``."""

    def __init__(
        self,
        sandbox: Sandbox,
        lm: LanguageModel,
        recorder: Recorder,
        budgets: Budgets,
        max_tokens: int = 4096,
        eval_slots: int = 2,
        seed: int = 0,
        *,
        sizes: boundary.SizeLimits | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.sizes = sizes or boundary.SizeLimits()
        self.seed = seed
        self.lm = lm
        self.recorder = recorder
        self.budgets = budgets
        self.max_tokens = max_tokens
        # CPU-bound solution jobs share the cores; improver jobs mostly wait and take no slot,
        # so nested calls (improver -> utility -> solution) cannot deadlock.
        self._eval_slots = threading.BoundedSemaphore(eval_slots)

    # --- solutions ---------------------------------------------------------------------------

    def evaluate(self, solution: object, task: Task, split: Split, tag: str) -> Evaluation:
        """Score ``solution`` (untrusted source) on every instance of ``split``."""
        instances = task.instances(split)
        if not isinstance(solution, str):
            program_id = self.recorder.program("solution", repr(solution)[:10_000])
            reason = f"solution is a {type(solution).__name__}, not source text"
            self.recorder.evaluation(program_id, tag, task.name, split, 0.0, len(instances), len(instances),
                                     reason, 0.0)
            return Evaluation(0.0, len(instances), len(instances), reason, program_id)
        solution, refused = boundary.admit_source(self.recorder, solution, "solution", tag, self.sizes.source_bytes)
        if refused:
            program_id = self.recorder.program("solution", f"# not stored: {refused}\n")
            self.recorder.evaluation(program_id, tag, task.name, split, 0.0, len(instances), len(instances),
                                     refused, 0.0)
            return Evaluation(0.0, len(instances), len(instances), refused, program_id)
        program_id = self.recorder.program("solution", solution)
        job = Job(
            source=solution,
            entry=task.entry,
            calls=tuple(instance.args for instance in instances),
            call_timeout_s=task.call_timeout_s,
            array_args=task.array_args,
            seed=self._seed(tag),
        )
        started = time.monotonic()
        with self._eval_slots:
            outcome = boundary.admit_outcome(self.recorder, self.sandbox.run(job), program_id)
        scores, reasons, failures = self._score(task, instances, outcome, program_id)
        failed = sum(1 for score in scores if score == 0.0)
        mean = sum(scores) / len(scores) if scores else 0.0
        combine = getattr(task, "combine", None)
        if callable(combine):  # a task scored as a whole call (the paper's reference scorers)
            mean = min(max(float(combine(scores, failures)), 0.0), 1.0)
        reason = reasons[0] if reasons else ""
        self._runtime_events(program_id, outcome, [r for r in reasons if r.startswith("invalid output")])
        self.recorder.evaluation(program_id, tag, task.name, split, mean, len(instances), failed, reason,
                                 time.monotonic() - started)
        return Evaluation(mean, len(instances), failed, reason, program_id)

    def _score(
        self, task: Task, instances: Sequence[Instance], outcome: Outcome, program_id: int
    ) -> tuple[list[float], list[str], list[str]]:
        """Trusted per-instance scores (0 for a missing or failed call), the reasons for failures,
        and per instance what failed: "" (nothing), "invalid" (output rejected by the scorer),
        "timeout", "error" or "missing" (not run: an earlier call ended the job)."""
        scores: list[float] = []
        reasons: list[str] = [outcome.reason] if outcome.reason else []
        failures: list[str] = []
        for index, instance in enumerate(instances):
            result = outcome.results[index] if index < len(outcome.results) else None
            if result is None or not result.ok:
                scores.append(0.0)
                if result is not None:
                    reasons.append(result.error)
                    failures.append("timeout" if "timeout" in result.error.lower() else "error")
                else:
                    failures.append("missing")
                continue
            scored = task.score(instance, result.value)
            rejected = scored.reason.startswith(("invalid output", "scorer rejected"))
            failures.append("invalid" if rejected else "")
            value = scored.value
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                self.recorder.event("score_out_of_range", f"{task.name}: raw score {value!r}", program_id)
                value = min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0
            if scored.reason:
                reasons.append(scored.reason)
            scores.append(value)
        return scores, reasons, failures

    def _runtime_events(self, program_id: int, outcome: Outcome, invalid: list[str]) -> None:
        """Record what the sandbox and the scorer saw, one event per kind and job, linked to the program."""
        texts = [outcome.reason, outcome.stderr, *(result.error for result in outcome.results)]
        timed_out = [f"#{index + 1}: {result.error}" for index, result in enumerate(outcome.results)
                     if result.timed_out]
        if timed_out:  # every slow call by number, each with its own reason
            self.recorder.event("timeout", f"{len(timed_out)} call(s) timed out: " + "; ".join(timed_out)[:4000],
                                program_id)
        if outcome.reason.startswith(("timeout", "deadline")):
            self.recorder.event("timeout", outcome.reason, program_id)
        elif not outcome.ok:
            self.recorder.event("job_failed", outcome.reason, program_id)
        denied = next((text for text in texts if any(mark in text for mark in _DENIAL_MARKS)), "")
        if denied:
            self.recorder.event("denied", denied[-500:], program_id)
        if invalid:
            self.recorder.event("invalid_output", f"{len(invalid)} instance(s): {invalid[0]}", program_id)
        boundary.record_sandbox_notes(self.recorder, outcome.stderr, program_id)

    # --- improvers ---------------------------------------------------------------------------

    def improve(self, improver: str, initial_solution: str, utility: Utility, tag: str) -> ImproverRun:
        """Run ``improver`` (untrusted source) once on ``initial_solution`` with fresh budgets.

        The run has one wall-clock deadline, LM waits and utility calls included, that nothing
        the improver does can move: ``improver_timeout_s``, times ``1 + utility_calls`` when the
        utility runs improvers itself. Solutions it has scored stop at that deadline too.
        """
        improver, refused = boundary.admit_source(self.recorder, improver, "improver", tag, self.sizes.source_bytes)
        if refused:
            self.recorder.event("improver_failed", f"{tag}: {refused}")
            return ImproverRun(None, refused, 0, 0)
        program_id = self.recorder.program("improver", improver)
        session = _ImproverCalls(self, utility, RunBudget(self.budgets), tag, program_id)
        timeout_s = self.budgets.improver_timeout_s
        if getattr(utility, "runs_improvers", False):
            timeout_s *= 1 + self.budgets.utility_calls
        job = Job(
            source=improver,
            entry=IMPROVER_ENTRY,
            calls=(improver_call(initial_solution),),
            call_timeout_s=timeout_s,
            clock="wall",
            startup_timeout_s=min(STARTUP_TIMEOUT_S, timeout_s),
            deadline_s=timeout_s,
            seed=self._seed(tag),
            modules=(HELPERS_MODULE,),
            remotes=improver_remotes(utility.description, self.budgets),
        )
        try:
            outcome = self.sandbox.run(job, session.handle)
        except _Fatal as fatal:
            raise fatal.error from None
        if session.capped is not None:  # the run is over, whatever the improver made of it
            raise session.capped
        outcome = boundary.admit_outcome(self.recorder, outcome, program_id)
        self._runtime_events(program_id, outcome, [])
        budget = session.budget
        result = outcome.results[0] if outcome.ok and outcome.results else None
        if result is None:
            failure = outcome.reason or "improver produced no result"
        elif not result.ok:
            failure = result.error
        elif not isinstance(result.value, str):
            failure = f"improver returned a {type(result.value).__name__}, not source text"
        else:
            return ImproverRun(result.value, "", budget.lm_calls, budget.utility_calls)
        self.recorder.event("improver_failed", f"{tag}: {failure}", program_id)
        return ImproverRun(None, failure, budget.lm_calls, budget.utility_calls)

    def _seed(self, tag: str) -> int:
        """A job's seed: fixed by the run seed and the job's call site, whatever the thread timing."""
        digest = hashlib.sha256(f"{self.seed}/{tag}".encode()).digest()
        return int.from_bytes(digest[:4], "big")

    def complete(self, request: LMRequest, program_id: int | None = None) -> tuple[str, ...]:
        """One LM call, recorded; a sample cut off or withheld is also an event naming the call's tag."""
        response = self.lm.complete(request)
        self.recorder.lm_call(request, response)
        for index, text in enumerate(response.texts):
            reason = response.finish_reason(index)
            where = f"{request.tag} sample {index}"
            if reason == "length":
                open_block = ", inside an unclosed code block" if ends_in_open_block(text) else ""
                self.recorder.event("truncated", f"{where}: cut off at max_tokens {request.max_tokens} after "
                                    f"{len(text)} characters{open_block}", program_id)
            elif reason == "content_filter":
                self.recorder.event("content_filtered", f"{where}: withheld by the provider", program_id)
            elif ends_in_open_block(text):
                self.recorder.event("unterminated_code", f"{where}: ends inside an unclosed code block", program_id)
        return response.texts


class _ImproverCalls:
    """Answers the proxy calls (utility, language model) of one improver run, against that run's budget."""

    def __init__(self, broker: Broker, utility: Utility, budget: RunBudget, tag: str, program_id: int) -> None:
        self.broker = broker
        self.utility = utility
        self.budget = budget
        self.tag = tag
        self.program_id = program_id
        self.refusals: set[tuple[str, str]] = set()
        self.stored_bytes = 0  # text this run's calls add to the store (prompts, solutions)
        self.capped: RunCapExceeded | None = None  # the run-level cap one of this run's calls hit

    def handle(self, remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Check the call and the budget (errors go to the improver), then do the work."""
        if self.capped is not None:  # the run is over: no more work for this improver
            raise self.capped
        try:
            (args, kwargs), repaired = boundary.clean([args, kwargs])
        except boundary.Rejected as exc:
            self._refuse("invalid_argument", f"{remote}.{method}: {exc}")
            raise ProxyError(f"{remote}.{method}: {exc}") from None
        if repaired:
            self._refuse("invalid_text", f"{remote}.{method}: {repaired} invalid code point(s) in the arguments, "
                                         "replaced with U+FFFD")
        try:
            work = self._check(remote, method, args, kwargs)
        except ProxyError as exc:
            self._refuse("size_limit" if "size limit:" in str(exc) else "proxy_error", str(exc))
            raise
        except BudgetExceeded as exc:
            if ("budget", str(exc)) not in self.refusals:  # once per kind and run: one event per loop
                self.refusals.add(("budget", str(exc)))
                self.broker.recorder.event("budget_exceeded", f"{self.tag}: {exc}", self.program_id)
            raise
        try:
            return work()
        except PromptRejected as exc:  # the improver's own prompt: its error, not the run's
            self.broker.recorder.event("prompt_rejected", f"{self.tag}: {exc}", self.program_id)
            raise
        except RunCapExceeded as exc:  # the improver sees it; ``improve`` raises it once the job ends
            self.capped = exc
            raise
        except SelftaughtError as exc:
            raise _Fatal(exc) from exc

    def _refuse(self, kind: str, detail: str) -> None:
        """Record a hostile or broken call once per kind and message in this improver run."""
        if (kind, detail) not in self.refusals:
            self.refusals.add((kind, detail))
            self.broker.recorder.event(kind, f"{self.tag}: {detail}", self.program_id)

    def _grow_store(self, texts: Sequence[str], where: str) -> None:
        """Count text this call will store; past the run's allowance the improver gets ProxyError."""
        size = sum(len(text) for text in texts)
        limit = self.broker.sizes.store_growth_bytes
        if self.stored_bytes + size > limit:
            raise ProxyError(f"{where}: size limit: this improver run would store more than {limit} bytes "
                             "of text (sandbox max_store_growth_mb)")
        self.stored_bytes += size

    def _check(self, remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Callable[[], Any]:
        """The call's work, once the call is well formed (``ProxyError``) and within the budget
        (``BudgetExceeded``); nothing is allocated in proportion to the call before both checks."""
        call = parse_call(remote, method, args, kwargs)
        if isinstance(call, UtilityCall):
            solution = call.solution
            if isinstance(solution, str):
                refused = boundary.check_source(solution, self.broker.sizes.source_bytes, "solution")
                if refused:
                    raise ProxyError(f"utility: {refused}")
                self._grow_store([solution], "utility")
            index = self.budget.take_utility_call()
            return lambda: self.utility(solution, f"{self.tag}/u{index}")
        return self._lm_work(call)

    def _lm_work(self, call: LMCall) -> Callable[[], list[str]]:
        if not call.responses:
            return list
        if call.responses > self.budget.budgets.responses_per_call:
            self.budget.take_lm_call(call.responses)  # raises BudgetExceeded, before any list is built
        self._grow_store([call.expertise, *dict.fromkeys(call.messages)], "language_model")
        index = self.budget.take_lm_call(call.responses)
        messages = call.expanded()

        def work() -> list[str]:
            # Identical messages become one request with n samples, as the paper's LM did.
            groups: dict[str, list[int]] = {}
            for position, message in enumerate(messages):
                groups.setdefault(message, []).append(position)
            requests = [
                LMRequest(system=call.expertise, user=message, n=len(positions), temperature=call.temperature,
                          max_tokens=self.broker.max_tokens, tag=f"{self.tag}/c{index}/g{group}")
                for group, (message, positions) in enumerate(groups.items())
            ]
            # Distinct messages go out together (the LM's concurrency limit still applies).
            with ThreadPoolExecutor(max_workers=len(requests), thread_name_prefix="lm-group") as pool:
                replies = list(pool.map(lambda request: self.broker.complete(request, self.program_id), requests))
            answers = [""] * len(messages)
            for positions, texts in zip(groups.values(), replies, strict=True):
                for position, text in zip(positions, texts, strict=True):
                    answers[position] = text
            return answers

        return work
