"""Shared fixtures: a fake OpenAI-compatible server scripted with good and hostile programs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from selftaught.improver import SEED_IMPROVER
from selftaught.lm.fake_server import FakeOpenAIServer, Reply
from tests.programs.lpn import (
    GOOD_HINT,
    GOOD_SOLUTION,
    HANGING_SOLUTION,
    HOSTILE_IMPROVERS,
    HOSTILE_SOLUTIONS,
    MAJORITY_SOLUTION,
    fenced,
    hinted_improver,
)

FAKE_KEY = "sk-test-SECRET-0123456789"


class ScriptedServer:
    """Answers improver prompts with one better improver and hostile ones, solution prompts with
    the good solution when the better improver's hint is present, else with mediocre and hostile code."""

    def __init__(self, meta_pool: list[str] | None = None, hanging: bool = True) -> None:
        self.server = FakeOpenAIServer(self.respond)
        self.meta_pool = meta_pool
        self.hanging = hanging
        self.fail_after: int | None = None
        self.answered = 0

    def __enter__(self) -> ScriptedServer:
        self.server.__enter__()
        port = self.base_url.rsplit(":", 1)[1].split("/")[0]
        if self.meta_pool is None:
            improvers = [hinted_improver(SEED_IMPROVER)] + [
                HOSTILE_IMPROVERS[name] for name in ("budget_reset", "swallows_budget_errors", "own_client",
                                                     "infinite_loop", "crash")
            ]
            self.meta_pool = [fenced(code.replace("PORT", port)) for code in improvers]
        solutions = [MAJORITY_SOLUTION, *HOSTILE_SOLUTIONS.values()] + ([HANGING_SOLUTION] if self.hanging else [])
        self.solution_pool = [fenced(code.replace("PORT", port)) for code in solutions]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def requests(self) -> list[Any]:
        return self.server.requests

    def respond(self, body: dict[str, Any]) -> Reply:
        self.answered += 1
        if self.fail_after is not None and self.answered > self.fail_after:
            return Reply(status=500, error_message="the model is down")
        user = body["messages"][-1]["content"]
        n = int(body.get("n") or 1)
        assert self.meta_pool is not None
        if "def improve_algorithm" in user:
            pool = self.meta_pool
        elif GOOD_HINT in user:
            pool = [fenced(GOOD_SOLUTION)]
        else:
            pool = self.solution_pool
        return Reply(texts=tuple(pool[i % len(pool)] for i in range(n)))


@pytest.fixture
def scripted_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        yield server


def child_pids() -> set[int]:
    """Live descendants of this process (zombies excluded)."""
    me, found = os.getpid(), set()
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    frontier = {me}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


SANDBOX_COMMS = {"sandbox-worker", "sandbox-spare", "sandbox-job", "bwrap"}


def orphaned_sandbox_pids() -> set[int]:
    """Sandbox processes whose parent died and that now hang off init."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                head, tail = handle.read().rsplit(")", 1)
        except OSError:
            continue
        comm = head.split("(", 1)[1]
        fields = tail.split()
        if comm in SANDBOX_COMMS and fields[0] != "Z" and int(fields[1]) == 1:
            found.add(int(entry))
    return found
