"""The one gate for data out of a sandbox, before the store, the LM cache or the LM sees it.

Everything a sandboxed job hands the broker passes through here first: a job's results, error
texts and output (``clean_outcome``) and the arguments of its proxy calls (``clean``). What it does:

* text with code points UTF-8 cannot carry (lone surrogates, which JSON's ``"\\ud800"`` escape
  produces) is repaired with U+FFFD, and the number of repairs comes back so the caller records
  an event; SQLite, the LM cache's keys and every HTTP client would otherwise raise on it;
* values nested deeper than ``MAX_DEPTH``, or of a type JSON does not have, are refused
  (``Rejected``), so no scorer or store write recurses on hostile structure;
* numbers pass unchanged, NaN and infinities included: scorers treat them as invalid outputs,
  and proxy arguments are range-checked where they are bound (``proxy.remotes``);
* program text is size-checked against ``SizeLimits.source_bytes`` (``check_source``).

Sizes of whole messages are bounded earlier, before anything is parsed, by the wire reader
(``sandbox._wire.FrameReader``), which the sandbox configures with the same limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from selftaught.config import SandboxConfig
from selftaught.records import CallResult, Outcome, Recorder

__all__ = [
    "MAX_DEPTH",
    "Rejected",
    "SizeLimits",
    "admit_outcome",
    "admit_source",
    "check_source",
    "clean",
    "clean_outcome",
    "clean_text",
    "record_sandbox_notes",
]

MAX_DEPTH = 100
"""Deepest nesting of lists and dicts accepted from a sandbox."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


class Rejected(Exception):
    """A value from a sandbox that the broker will not use; the message says why."""


@dataclass(frozen=True)
class SizeLimits:
    """The broker's size limits (``SandboxConfig``'s ``max_*`` fields, in bytes)."""

    source_bytes: int = 512 * 1024
    store_growth_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_config(cls, config: SandboxConfig) -> SizeLimits:
        return cls(config.max_source_kb * 1024, config.max_store_growth_mb * 1024 * 1024)


def clean_text(text: str) -> tuple[str, int]:
    """``text`` with each lone surrogate replaced by U+FFFD, and how many were replaced."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.subn(_REPLACEMENT, text)
    return text, 0


def clean(value: Any, depth: int = 0) -> tuple[Any, int]:
    """``value`` (parsed JSON) with its text repaired, and the number of repairs.

    Raises ``Rejected`` for nesting deeper than ``MAX_DEPTH`` or a value JSON cannot hold.
    """
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value, 0
    if depth >= MAX_DEPTH:
        raise Rejected(f"data nested deeper than {MAX_DEPTH} levels")
    repaired = 0
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            fixed, count = clean(item, depth + 1)
            items.append(fixed)
            repaired += count
        return (items if repaired else value), repaired
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Rejected(f"a mapping key of type {type(key).__name__}")
            fixed_key, key_count = clean_text(key)
            fixed, count = clean(item, depth + 1)
            plain[fixed_key] = fixed
            repaired += key_count + count
        return (plain if repaired else value), repaired
    raise Rejected(f"a value of type {type(value).__name__}")


def clean_outcome(outcome: Outcome) -> tuple[Outcome, int]:
    """The outcome with every text repaired and each unusable result turned into a failure.

    Returns the cleaned outcome and the number of repaired code points.
    """
    reason, repaired_reason = clean_text(outcome.reason)
    stderr, repaired_stderr = clean_text(outcome.stderr)
    repaired = repaired_reason + repaired_stderr
    results: list[CallResult] = []
    for result in outcome.results:
        error, count = clean_text(result.error)
        repaired += count
        try:
            value, count = clean(result.value)
        except Rejected as exc:
            results.append(CallResult(ok=False, error=f"invalid output: {exc}", elapsed_s=result.elapsed_s))
            continue
        repaired += count
        results.append(replace(result, value=value, error=error))
    return replace(outcome, reason=reason, stderr=stderr, results=tuple(results)), repaired


def check_source(text: str, limit_bytes: int, what: str) -> str:
    """Why ``text`` is too big to run or store as a program, or "" when it is not."""
    if len(text) <= limit_bytes // 4:  # four UTF-8 bytes per code point at most
        return ""
    size = len(text.encode("utf-8", "replace"))
    if size <= limit_bytes:
        return ""
    return f"size limit: {what} of {size} bytes exceeds the {limit_bytes}-byte limit (sandbox max_source_kb)"


def admit_source(recorder: Recorder, source: str, what: str, tag: str, limit_bytes: int) -> tuple[str, str]:
    """Program text made safe to store and run: (repaired text, "") or ("", why it is refused),
    with an event for each repair or refusal."""
    source, repaired = clean_text(source)
    if repaired:
        recorder.event("invalid_text", f"{tag}: {what} source had {repaired} invalid code point(s), replaced "
                                       "with U+FFFD")
    refused = check_source(source, limit_bytes, what)
    if refused:
        recorder.event("size_limit", f"{tag}: {refused}")
        return "", refused
    return source, ""


def admit_outcome(recorder: Recorder, outcome: Outcome, program_id: int) -> Outcome:
    """``clean_outcome``, recording repaired text and a job killed at its size limit as events
    (results refused for their size are recorded from the sandbox's notes)."""
    cleaned, repaired = clean_outcome(outcome)
    if repaired:
        recorder.event("invalid_text", f"{repaired} invalid code point(s) in the job's output and results, "
                                       "replaced with U+FFFD", program_id)
    if cleaned.reason.startswith("size limit"):
        recorder.event("size_limit", cleaned.reason[:500], program_id)
    return cleaned


def record_sandbox_notes(recorder: Recorder, stderr: str, program_id: int) -> None:
    """Events for the sandbox's ``[sandbox] ...`` lines after a job's output: messages refused for
    their size, processes killed or forks refused at the job's cgroup limits. (A job can write such
    a line itself, but only to put a false event against its own program.)"""
    for line in stderr.splitlines()[-3:]:
        if line.startswith("[sandbox] "):
            note = line.removeprefix("[sandbox] ")
            recorder.event("size_limit" if note.startswith("size limit") else "resource_limit", note[:500],
                           program_id)
