"""A whole ``selftaught run`` whose model (the fake OpenAI-compatible server over loopback) answers
with improvers attacking the trusted side: invalid text, absurd arguments, oversized inputs, result
amplification, memory beyond the job's limit through child processes, and channels between jobs.

The run must finish, each attack must be recorded as an event, the broker's peak memory must stay
within the documented bound, nothing may be left behind (processes, IPC objects, cgroups), and a
run whose broker died must resume.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from selftaught.cli import main
from tests.conftest import FAKE_KEY, ScriptedServer, child_pids, orphaned_sandbox_pids
from tests.programs.lpn import fenced

pytestmark = pytest.mark.slow

HOSTILE = {
    "invalid_text": '''
def improve_algorithm(initial_solution, utility, language_model):
    bad = "\\ud800"
    language_model.prompt("expert " + bad, "improve this " + bad, 1, 0.7)
    utility(initial_solution + "\\n# " + bad + "\\n")
    return initial_solution + "\\n# " + bad + "\\n"
''',
    "absurd_arguments": '''
import sys
def improve_algorithm(initial_solution, utility, language_model):
    for n in (10**30, 2**40):
        try:
            language_model.prompt("e", "m", n, 0.5)
        except BudgetExceeded as exc:
            print("refused:", exc, file=sys.stderr)
    for t in (float("nan"), float("inf")):
        try:
            language_model.prompt("e", "m", 1, t)
        except ProxyError as exc:
            print("refused:", exc, file=sys.stderr)
    return initial_solution
''',
    "oversized": '''
def improve_algorithm(initial_solution, utility, language_model):
    try:
        utility("#" * 600_000 + "\\n" + initial_solution)
    except ProxyError:
        pass
    for _ in range(4):
        try:
            language_model.prompt("e", "x" * 300_000, 1, 0.5)
        except (ProxyError, BudgetExceeded):
            pass
    return "#" * 100_000 + "\\n" + initial_solution
''',
    "amplifier": '''
def improve_algorithm(initial_solution, utility, language_model):
    for _ in range(3):
        try:
            utility([[]] * 100_000)
        except ProxyError:
            pass
    return initial_solution
''',
    "memory_through_children": '''
import os, sys, time
def improve_algorithm(initial_solution, utility, language_model):
    children = []
    for _ in range(4):
        read, write = os.pipe()
        if os.fork() == 0:
            block = bytearray(150 << 20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            os.write(write, b"1")
            time.sleep(2)
            os._exit(0)
        os.close(write)
        children.append(read)
    held = sum(len(os.read(read, 1)) for read in children)
    print("children holding 150 MB:", held, file=sys.stderr)
    return initial_solution
''',
    "shared_state": '''
import ctypes, os, socket, sys
def improve_algorithm(initial_solution, utility, language_model):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.shmget(0, 256 << 20, 0o1666) == -1:
        print("shmget:", os.strerror(ctypes.get_errno()), file=sys.stderr)
    if libc.msgget(0, 0o1666) == -1:
        print("msgget:", os.strerror(ctypes.get_errno()), file=sys.stderr)
    try:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind("\\0selftaught-hidden-split")
        listener.listen(1)
    except OSError as exc:
        print("abstract socket:", exc, file=sys.stderr)
    return initial_solution
''',
}

CONFIG = """
iterations = 1
repeats = 1
[budgets]
lm_calls = 4
responses_per_call = 6
utility_calls = 8
improver_timeout_s = 30
[sandbox]
memory_mb = 384
max_processes = 32
workers = 2
max_source_kb = 64
max_result_kb = 512
max_job_values = 200000
max_store_growth_mb = 1
"""

GROWTH_BOUND_MB = 150
"""How far the broker's peak resident memory may rise above its size before the run (the README's
trust model quotes the bound). Growth, not the total: in a test session the process already holds
whatever earlier tests imported."""


def ipc_objects() -> list[str]:
    found = []
    for name in ("shm", "msg", "sem"):
        with open(f"/proc/sysvipc/{name}") as handle:
            found += [f"{name}:{line.split()[1]}" for line in handle.readlines()[1:]]
    if os.path.isdir("/dev/mqueue"):
        found += [f"mq:{entry}" for entry in os.listdir("/dev/mqueue")]
    return sorted(found)


def our_cgroups() -> list[str]:
    found = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(root, d) for d in dirs if d.startswith(f"selftaught-{os.getpid()}-")]
        dirs[:] = [d for d in dirs if not d.startswith("selftaught-")]
    return found


def rss_mb(field: str) -> float:
    """``VmHWM`` (the peak since the last reset) or ``VmRSS`` (now) of this process, in MB."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


def test_a_run_of_hostile_improvers_finishes_records_every_attack_and_resumes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hostile.toml"
    config.write_text(CONFIG)
    runs = tmp_path / "runs"
    with ScriptedServer(meta_pool=[fenced(code) for code in HOSTILE.values()], hanging=False) as server:
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        processes, ipc, cgroups = child_pids(), ipc_objects(), our_cgroups()  # other tests' sandboxes may be open
        with open("/proc/self/clear_refs", "w") as handle:  # measure this run's peak, not the session's
            handle.write("5")
        before = rss_mb("VmRSS")
        code = main(["run", "--config", str(config), "--task", "lpn", "--lm", "openai:fake-model",
                     "--runs-dir", str(runs), "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        growth = rss_mb("VmHWM") - before
    run_id = json.loads(out)["run_id"]
    db = sqlite3.connect(runs / "selftaught.db")
    status, layers = db.execute("SELECT status, sandbox_layers FROM runs WHERE id=?", (run_id,)).fetchone()
    assert status == "finished"
    events: dict[str, list[str]] = {}
    for kind, detail in db.execute("SELECT kind, detail FROM events WHERE run_id=?", (run_id,)):
        events.setdefault(kind, []).append(detail)
    assert events.get("invalid_text"), events                            # 1
    assert events.get("budget_exceeded") and events.get("proxy_error")   # 2
    sizes = " ".join(events.get("size_limit", []))
    assert "max_source_kb" in sizes and "max_store_growth_mb" in sizes   # 3
    assert "values" in sizes and "refused a call message" in sizes       # 4
    if any(layer.startswith("cgroup") for layer in json.loads(layers)):  # 5
        assert any("memory limit" in detail for detail in events.get("resource_limit", [])), events
    assert any("Operation not permitted" in detail for detail in events.get("denied", [])), events  # 6
    # Nothing stored is unreadable, and nothing was left behind.
    assert all("\ud800" not in text for (text,) in db.execute("SELECT prompt FROM lm_calls"))
    assert growth < GROWTH_BOUND_MB, growth
    assert child_pids() <= processes and not orphaned_sandbox_pids()
    assert ipc_objects() == ipc
    assert our_cgroups() == cgroups

    # The broker dies (here: its record says a pid that is gone); readers say so; resume continues it.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with db:
        db.execute("UPDATE runs SET status='running', broker_pid=? WHERE id=?", (dead.pid, run_id))
    db.close()
    assert main(["runs", "--runs-dir", str(runs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "interrupted"
    with ScriptedServer(meta_pool=[fenced(code) for code in HOSTILE.values()], hanging=False) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        assert main(["resume", run_id, "--runs-dir", str(runs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "finished"
