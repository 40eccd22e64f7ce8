"""The broker's boundary without a sandbox: text repair, nesting, the wire reader's size and value
limits, and a store that no stored row can make unreadable."""

from __future__ import annotations

import json
import sqlite3
import struct
import tracemalloc
from pathlib import Path

import pytest

from selftaught.broker.boundary import MAX_DEPTH, Rejected, check_source, clean, clean_outcome, clean_text
from selftaught.records import CallResult, LMRequest, LMResponse, Outcome
from selftaught.sandbox._wire import FrameReader, Oversized, WireError, count_items
from selftaught.store import RunCache, RunStore


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def test_lone_surrogates_are_replaced_and_counted() -> None:
    assert clean_text("ok") == ("ok", 0)
    assert clean_text("a\ud800b\udfff") == ("a\ufffdb\ufffd", 2)
    value, repaired = clean({"k\udc80": ["x\ud800", 1.5, float("nan"), None, True, 10**40]})
    assert repaired == 2 and value["k\ufffd"][0] == "x\ufffd"
    json.dumps(value).encode()  # what a store or HTTP client does with it


def test_deep_nesting_and_foreign_types_are_refused() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(Rejected, match="nested deeper"):
        clean(deep)
    with pytest.raises(Rejected, match="type bytes"):
        clean([b"raw"])


def test_outcome_is_cleaned_and_unusable_results_become_failures() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    outcome = Outcome(ok=True, results=(CallResult(True, "v\ud800"), CallResult(False, None, "err\udfff"),
                                        CallResult(True, deep)), reason="", stderr="s\ud83d")
    cleaned, repaired = clean_outcome(outcome)
    assert repaired == 3
    assert cleaned.results[0].value == "v\ufffd" and cleaned.results[1].error == "err\ufffd"
    assert not cleaned.results[2].ok and cleaned.results[2].error.startswith("invalid output")
    assert cleaned.stderr == "s\ufffd"


def test_source_size_limit_counts_utf8_bytes() -> None:
    assert check_source("x" * 100, 100, "solution") == ""
    assert "exceeds the 100-byte limit" in check_source("é" * 60, 100, "solution")


def test_an_oversized_frame_is_skipped_unparsed_and_the_stream_goes_on() -> None:
    body = b"[" + b"[]," * (16 * 1024 * 1024 // 3) + b"[]]"
    reader = FrameReader(limit=4 * 1024 * 1024, max_items=2_000_000)
    data = frame(b'{"t":"result","ok":true,"value":' + body + b"}") + frame(b'{"t":"result","value":1}')
    tracemalloc.start()
    messages = []
    for start in range(0, len(data), 1 << 20):  # as the socket delivers it
        messages += reader.feed(data[start:start + (1 << 20)])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert isinstance(messages[0], Oversized) and messages[0].kind() == "result"
    assert messages[1] == {"t": "result", "value": 1}
    assert not reader.pending
    # The 16 MB of nested lists cost about 385 MB parsed; refused, they cost a chunk or two.
    assert peak < 8 * 1024 * 1024, peak


def test_values_are_budgeted_across_a_readers_frames() -> None:
    small = b"[" + b"[]," * 999 + b"[]]"
    assert count_items(small) >= 2000
    reader = FrameReader(max_items=5000)
    first, second, third = reader.feed(frame(small) + frame(small) + frame(small))
    assert isinstance(first, list) and isinstance(second, list)
    assert isinstance(third, Oversized) and "per job" in third.reason


def test_frames_past_the_hard_limit_and_bad_json_are_protocol_errors() -> None:
    with pytest.raises(WireError):
        FrameReader(hard_limit=10).feed(struct.pack(">I", 11))
    with pytest.raises(WireError):
        FrameReader().feed(frame(b"{nope"))
    with pytest.raises(WireError):
        FrameReader().feed(frame(b"1" * 5000))  # past Python's integer-digits limit


def test_the_store_accepts_and_returns_any_text(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "m", 0, {}, [])
    store.add_event(run_id, "k", "bad \ud800 text")
    store.add_lm_call(run_id, LMRequest(system="s\udfff", user="u\ud800", tag="t"),
                      LMResponse(texts=("a\ud800",), model="m"))
    RunCache(store, run_id).put("key", "answer \ud800", {"note": "\udc00"})
    assert RunCache(store, run_id).get("key") == "answer \ufffd"
    program = store.add_program(run_id, "solution", "def f():\n    return '\ud800'\n")
    assert "\ufffd" in store.program_source(program)
    store.close()


def test_a_row_that_is_not_utf8_cannot_stop_a_reader(tmp_path: Path) -> None:
    store = RunStore.in_dir(tmp_path)
    run_id = store.create_run("lpn", "m", 0, {}, [])
    RunCache(store, run_id).put("key", "fine", {})
    store.close()
    raw = sqlite3.connect(tmp_path / "selftaught.db")
    with raw:  # bytes no UTF-8 decoder accepts, as an older or foreign writer might leave them
        raw.execute("UPDATE lm_cache SET text=CAST(x'fffe41' AS TEXT)")
        raw.execute("UPDATE runs SET message=CAST(x'c3' AS TEXT), sandbox_layers='not json'")
    raw.close()
    store = RunStore.in_dir(tmp_path)
    assert RunCache(store, run_id).get("key") == "\ufffd\ufffdA"
    row = store.get_run(run_id)
    assert row.message == "\ufffd" and row.sandbox_layers == []
    store.close()
