"""Shared by the benchmarks: the machine's description, provenance (the git commit and the
command that produced a result), a scripted fake OpenAI server with a fixed latency per request,
statistics and result files.

Every result file written through ``write`` carries its provenance: in the JSON under
``"provenance"``, in the Markdown as its last line.

The scripted answers: a prompt holding an improver gets improvers back (alternately the seed
improver with a solving hint added, and the plain seed improver); a solution prompt gets the
exhaustive-search LPN solution (about 100%) when the hint is present, else the majority-label
one (about 50%). The programs come from ``tests/programs/lpn.py``, which the tests use too.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the scripted programs live in the tests package
    sys.path.insert(0, str(ROOT))

from selftaught.improver import SEED_IMPROVER  # noqa: E402
from selftaught.lm.fake_server import FakeOpenAIServer, Reply  # noqa: E402
from tests.programs.lpn import GOOD_HINT, GOOD_SOLUTION, MAJORITY_SOLUTION, fenced, hinted_improver  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
IMPROVERS = (fenced(hinted_improver(SEED_IMPROVER)), fenced(SEED_IMPROVER))


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def command() -> str:
    """The command line that started this process, as typed from the repository root.

    The interpreter is written ``.venv/bin/python`` when it lives in a virtualenv called ``.venv``
    (the project's layout), else ``python``: a result file names no path of the machine it ran on.
    """
    python = ".venv/bin/python" if ".venv" in Path(sys.executable).parts else "python"
    script = Path(sys.argv[0]).resolve()
    shown = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else script.name
    return shlex.join([python, shown, *sys.argv[1:]])


@functools.cache
def provenance() -> dict[str, Any]:
    """The git commit this benchmark ran from and the command that ran it, fixed at first call
    (``machine()`` makes that call at a benchmark's start). ``changed`` lists uncommitted changes
    to tracked and untracked files, result files excepted: with any, the commit alone does not
    say what ran."""
    commit = _git("rev-parse", "HEAD").strip() or "unknown"
    changed = sorted({line[3:].strip() for line in _git("status", "--porcelain").splitlines()
                      if line[3:].strip() and not line[3:].strip().startswith("benchmarks/results")})
    return {"commit": commit, "dirty": bool(changed), "changed": changed[:50], "command": command(),
            "started_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def provenance_line(info: dict[str, Any]) -> str:
    """Provenance as one Markdown line."""
    commit = info["commit"][:12]
    if info["dirty"]:
        shown = ", ".join(info["changed"][:5]) + (", ..." if len(info["changed"]) > 5 else "")
        commit += f" + uncommitted changes ({len(info['changed'])}: {shown})"
    return f"Commit {commit}; run {info['started_utc']}: `{info['command']}`"


def machine() -> dict[str, Any]:
    """Cores, CPU model, kernel, Python and the versions of the libraries that matter here; also
    fixes this run's provenance (commit and command) at its start."""
    provenance()
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("selftaught", "ray", "openai", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "versions": versions,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def machine_line(info: dict[str, Any]) -> str:
    """The machine as one Markdown line."""
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    load = info["load_average_at_start"][0]
    return (f"Machine: {info['cores']} cores, {info['cpu']}, kernel {info['kernel']}, Python {info['python']}; "
            f"{versions}; load average {load} at start (the machine may be shared: quote ratios, not "
            "the last digit).")


def responder(delay_s: float) -> Any:
    """The scripted answers above, each after ``delay_s`` seconds."""

    def respond(body: dict[str, Any]) -> Reply:
        user = body["messages"][-1]["content"]
        n = int(body.get("n") or 1)
        if "def improve_algorithm" in user:
            pool: tuple[str, ...] = IMPROVERS
        elif GOOD_HINT in user:
            pool = (fenced(GOOD_SOLUTION),)
        else:
            pool = (fenced(MAJORITY_SOLUTION),)
        return Reply(texts=tuple(pool[i % len(pool)] for i in range(n)), delay_s=delay_s)

    return respond


def scripted_server(delay_s: float) -> FakeOpenAIServer:
    """A started-on-enter fake OpenAI-compatible server with the scripted answers."""
    return FakeOpenAIServer(responder(delay_s))


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def write(name: str, report: dict[str, Any], markdown: str) -> Path:
    """Write ``benchmarks/results/NAME.json`` and ``.md`` with their provenance, echo the Markdown
    and say where it went; returns the Markdown file's path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["provenance"] = provenance()
    markdown = markdown.rstrip("\n") + "\n\n" + provenance_line(report["provenance"]) + "\n"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    path = RESULTS / f"{name}.md"
    path.write_text(markdown)
    print(markdown)
    print(f"Results: {path.relative_to(ROOT)} and {name}.json beside it", flush=True)
    return path
