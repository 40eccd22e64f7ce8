"""Shared sandboxes for the sandbox tests: one with bubblewrap (skipped where it cannot run) and
one with bubblewrap disabled (the L0 layers alone), each started once per test session.

A fake OPENAI_API_KEY is put in this process's environment before any worker starts, so the
escape tests can check it never reaches sandboxed code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from selftaught.config import SandboxConfig
from selftaught.sandbox import ForkServerSandbox, probe

FAKE_KEY = "sk-test-FAKE-broker-key-0123456789"


def descendants(root: int) -> set[int]:
    """Every live process below ``root``, from /proc, except zombies, idle spares (job processes
    the workers fork ahead of time, named ``sandbox-spare``) and workers (a spare is briefly
    named ``sandbox-worker`` between its fork and its renaming). Jobs and anything they start
    are named ``sandbox-job``, so leftovers of a job are always counted."""
    parents: dict[int, int] = {}
    uncounted: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        fields = rest.split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
            if name in ("sandbox-spare", "sandbox-worker"):
                uncounted.add(int(entry.name))  # its descendants (the jobs) still count
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found - uncounted


@pytest.fixture(scope="session", autouse=True)
def _fake_api_key() -> Iterator[None]:
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = FAKE_KEY
    yield
    if old is None:
        os.environ.pop("OPENAI_API_KEY", None)
    else:
        os.environ["OPENAI_API_KEY"] = old


CONFIG = SandboxConfig(memory_mb=512, workers=2, output_limit_kb=16, tmpfs_mb=32, file_size_mb=4)


@pytest.fixture(scope="session")
def bwrap_sandbox(_fake_api_key: None) -> Iterator[ForkServerSandbox]:
    report = probe()
    if not report.bubblewrap:
        pytest.skip(f"bubblewrap unavailable: {report.bubblewrap_error}")
    sandbox = ForkServerSandbox(CONFIG, bubblewrap=True)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="session")
def plain_sandbox(_fake_api_key: None) -> Iterator[ForkServerSandbox]:
    sandbox = ForkServerSandbox(CONFIG, bubblewrap=False)
    yield sandbox
    sandbox.close()


@pytest.fixture(params=["bwrap", "plain"])
def sandbox(request: pytest.FixtureRequest) -> ForkServerSandbox:
    """Each protocol test runs once per isolation mode."""
    name = "bwrap_sandbox" if request.param == "bwrap" else "plain_sandbox"
    box: ForkServerSandbox = request.getfixturevalue(name)
    return box


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return CONFIG


@pytest.fixture
def census() -> Callable[[], set[int]]:
    """Lists the live processes below this one."""
    return lambda: descendants(os.getpid())


@pytest.fixture
def no_leftovers(request: pytest.FixtureRequest, plain_sandbox: ForkServerSandbox) -> Iterator[None]:
    """Fails the test if it leaves any process below this one beyond those present before.

    It starts the shared sandboxes first, so their workers are part of "before". A job's caller
    gets its results before the job has exited, so it first waits until the shared sandboxes'
    workers have reported every job's tree gone (and killed any that lingered).
    """
    boxes = [plain_sandbox]
    with contextlib.suppress(pytest.skip.Exception):
        boxes.append(request.getfixturevalue("bwrap_sandbox"))
    before = descendants(os.getpid())
    yield
    for box in boxes:
        assert box._reaper.wait_idle(30), "a job's exit was never reported"
    after = descendants(os.getpid())
    assert after <= before, f"processes left behind: {sorted(after - before)}"
