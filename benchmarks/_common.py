"""Shared by the run-level benchmarks: the machine's description, a scripted fake OpenAI server
with a fixed latency per request, statistics and result files.

The scripted answers: a prompt holding an improver gets improvers back (alternately the seed
improver with a solving hint added, and the plain seed improver); a solution prompt gets the
exhaustive-search LPN solution (about 100%) when the hint is present, else the majority-label
one (about 50%). The programs come from ``tests/programs/lpn.py``, which the tests use too.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
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


def machine() -> dict[str, Any]:
    """Cores, CPU model, kernel, Python and the versions of the libraries that matter here."""
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


def write(name: str, report: dict[str, Any], markdown: str) -> None:
    """Write ``benchmarks/results/NAME.json`` and ``.md`` and echo the Markdown."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)
