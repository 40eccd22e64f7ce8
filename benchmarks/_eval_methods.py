"""The ways of evaluating one candidate that ``sandbox_overhead.py`` compares, and the agent
process each of them lives in.

A method turns a candidate's source into the value of its ``f()``; one sample times exactly one
such evaluation inside the method's own long-lived process (``time.perf_counter``), writing the
candidate's file included where the method needs one. The driver's pipe round trip to the agent
is not in the sample.

Only the ``sandbox`` methods isolate anything. ``prefork`` gives each candidate a fresh process
forked ahead of time and nothing else: the floor of any design with one process per candidate.
``subprocess`` and ``cold`` give each candidate a fresh interpreter (its own memory, nothing
else: same uid, filesystem and network); the rest run the candidate inside the evaluating process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CANDIDATES = {
    "trivial": "def f():\n    return sum(range(10))\n",
    "numpy": "import numpy as np\n\n\ndef f():\n    return float(np.arange(10).sum())\n",
}
EXPECTED = 45
THREAD_CAPS = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
UNSET = ("PYTHONDONTWRITEBYTECODE",)
"""Left out of every agent's and child's environment: each method runs with Python's defaults
(importing a file caches its bytecode), whatever the shell that started the benchmark sets."""


def agent_env() -> dict[str, str]:
    """The environment of an agent process (and of the interpreters it starts)."""
    return {key: value for key, value in os.environ.items() if key not in UNSET}

DESCRIPTIONS = {
    "sandbox": "selftaught's `ForkServerSandbox`, default config (2 workers), every layer this host offers: "
               "`.run(Job)` of the candidate with one call",
    "sandbox-no-bwrap": "the same with `bubblewrap=False` (rlimits, uid, seccomp, pid namespace still on)",
    "sandbox-no-cgroups": "the full sandbox with `sandbox.job_cgroups = false` (no cgroup per job; rlimits "
                          "bound each process instead)",
    "write-import": "the peers' pattern as the paper's code has it (`run_by_creating_file`): write "
                    "`temp/f_<timestamp>.py` (`temp/` has no `__init__.py`, so it is a namespace package), "
                    "`importlib.invalidate_caches()`, `import_module` (which, as Python does by default, also "
                    "writes the bytecode to `temp/__pycache__`), `getattr`, call `f`, in-process; no isolation. "
                    "Each file stays behind, as in the paper's runs",
    "write-import-package": "`write-import` with a `temp/__init__.py`, which the paper's code does not write: "
                            "faster, since importing from a regular package lists only `temp/` again after "
                            "`invalidate_caches()`, where a namespace package lists every `sys.path` folder again",
    "evaluator-import": "OpenEvolve 0.4.1's evaluator path with its defaults, in our words: write the candidate to "
                        "`NamedTemporaryFile(suffix='.py', delete=False)`, load the user's evaluator module again "
                        "(the cascade default does, each call), run its `evaluate(path)` "
                        "(`spec_from_file_location` + `exec_module`, call `f`) on a one-thread executor through "
                        "`asyncio.wait_for` (300 s), delete the file; in-process, no isolation",
    "exec-call": "`exec(compile(source))` and call `f` in-process: the floor, no isolation",
    "prefork": "the floor of one fresh process per candidate: a child forked ahead of time from the agent (numpy "
               "imported) runs a candidate of its own once (warming up), then waits on a socket; it compiles the "
               "candidate, runs it, calls `f`, sends the value back and exits (reaped, and its replacement forked, "
               "after the sample); no isolation, no limits",
    "subprocess": "ShinkaEvolve-style: write `main.py` in a fresh folder, run `python evaluate.py main.py "
                  "metrics.json` (imports the candidate, calls it, writes JSON), wait, read the JSON; "
                  "a fresh interpreter, no other isolation",
    "cold": "`python -c SOURCE` per candidate, result read from stdout",
}
SPAWNING = ("subprocess", "cold")  # a fresh interpreter per sample: slow, sampled less often

EVALUATE_PY = """import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
value = module.f()
with open(sys.argv[2], "w") as out:
    json.dump({"combined_score": value, "correct": True}, out)
"""

Evaluate = Callable[[str], Any]


def _child_env() -> dict[str, str]:
    return {**agent_env(), **THREAD_CAPS, "PYTHONUNBUFFERED": "1"}


def sandboxed(bubblewrap: bool | None, workers: int = 2, job_cgroups: bool = True) -> tuple[Evaluate, Any]:
    from selftaught.config import SandboxConfig
    from selftaught.records import Job
    from selftaught.sandbox import ForkServerSandbox

    box = ForkServerSandbox(SandboxConfig(workers=workers, job_cgroups=job_cgroups), bubblewrap=bubblewrap)

    def evaluate(source: str) -> Any:  # a fresh Job each time, as the broker builds one per evaluation
        outcome = box.run(Job(source=source, entry="f", calls=((),), call_timeout_s=10))
        if not outcome.ok or not outcome.results or not outcome.results[0].ok:
            raise RuntimeError(f"sandboxed job failed: {outcome.reason} {outcome.stderr[-300:]}")
        return outcome.results[0].value

    return evaluate, box


def write_import(workdir: Path, package: bool = False) -> Evaluate:
    """The paper's ``run_by_creating_file``; ``package`` adds the ``__init__.py`` it lacks."""
    folder = workdir / "temp"
    folder.mkdir()
    if package:
        (folder / "__init__.py").write_text("")
    sys.path.insert(0, str(workdir))  # where the paper's script folder (its working directory) is
    counter = iter(range(10**9))

    def evaluate(source: str) -> Any:
        name = f"f_{str(time.time()).replace('.', '')}_{next(counter)}"
        (folder / f"{name}.py").write_text(source)
        importlib.invalidate_caches()
        module = importlib.import_module(f"temp.{name}")
        return module.f()

    return evaluate


USER_EVALUATOR_PY = """import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"combined_score": module.f()}
"""


def evaluator_import(workdir: Path) -> Evaluate:
    """``evaluator-import``: OpenEvolve's in-process evaluator path (``DESCRIPTIONS``)."""
    evaluator_py = workdir / "evaluator.py"
    evaluator_py.write_text(USER_EVALUATOR_PY)
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(max_workers=1)

    def load_evaluator() -> Any:
        spec = importlib.util.spec_from_file_location("evaluation_module", evaluator_py)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    async def run(path: str) -> Any:
        user = load_evaluator()
        return await asyncio.wait_for(loop.run_in_executor(pool, user.evaluate, path), timeout=300)

    def evaluate(source: str) -> Any:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
            handle.write(source)
        try:
            return loop.run_until_complete(run(handle.name))["combined_score"]
        finally:
            os.unlink(handle.name)

    return evaluate


def exec_call(source: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "candidate"}
    exec(compile(source, "<candidate>", "exec"), namespace)
    return namespace["f"]()


class Prefork:
    """``prefork``: evaluate each candidate in a child forked before it came, with nothing else
    (no confinement, no limits, no framing beyond a length and a line): what one fresh process
    per candidate costs at least. ``refill`` reaps the children that have exited and forks
    replacements; the agent calls it after each sample, outside the timing."""

    AHEAD = 2

    def __init__(self) -> None:
        import numpy  # noqa: F401  preloaded, as the sandbox's workers do

        self.waiting: list[socket.socket] = []
        self.refill()

    def refill(self) -> None:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        while len(self.waiting) < self.AHEAD:
            ours, theirs = socket.socketpair()
            if os.fork() == 0:
                ours.close()
                _prefork_child(theirs)
            theirs.close()
            self.waiting.append(ours)

    def __call__(self, source: str) -> Any:
        with self.waiting.pop(0) as sock:
            data = source.encode()
            sock.sendall(len(data).to_bytes(4, "big") + data)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise RuntimeError("the forked child died")
                reply += chunk
        return json.loads(reply)


def _prefork_child(sock: socket.socket) -> None:
    code = 1
    try:
        exec_call(CANDIDATES["numpy"])  # warm up while waiting: first-touch page faults now, not later
        size = int.from_bytes(sock.recv(4, socket.MSG_WAITALL), "big")
        source = sock.recv(size, socket.MSG_WAITALL).decode()
        sock.sendall(json.dumps(exec_call(source)).encode() + b"\n")
        code = 0
    finally:
        os._exit(code)


def fresh_subprocess(workdir: Path) -> Evaluate:
    evaluate_py = workdir / "evaluate.py"
    evaluate_py.write_text(EVALUATE_PY)
    counter = iter(range(10**9))
    env = _child_env()

    def evaluate(source: str) -> Any:
        folder = workdir / f"gen_{next(counter)}"
        folder.mkdir()
        (folder / "main.py").write_text(source)
        metrics = folder / "metrics.json"
        done = subprocess.run([sys.executable, str(evaluate_py), str(folder / "main.py"), str(metrics)],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-300:])
        return json.loads(metrics.read_text())["combined_score"]

    return evaluate


def cold(source: str) -> Any:
    done = subprocess.run([sys.executable, "-c", source + "print(f())\n"], capture_output=True, text=True,
                          env=_child_env(), timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-300:])
    return float(done.stdout)


def throughput(box: Any, evaluate: Evaluate, seconds: float, threads: int) -> dict[str, Any]:
    """Numpy-candidate evaluations through ``box`` from ``threads`` caller threads for ``seconds``."""
    counts = [0] * threads
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        try:
            while time.monotonic() < stop:
                evaluate(CANDIDATES["numpy"])
                counts[i] += 1
        except Exception as error:  # reported, so a broken sandbox is not a slow one
            errors.append(repr(error))

    began = time.monotonic()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began
    return {"evaluations": sum(counts), "seconds": elapsed, "per_second": sum(counts) / elapsed,
            "errors": errors[:3]}


def path_listing() -> dict[str, int]:
    """How many ``sys.path`` folders this process has and how many entries they hold: what a
    namespace package's import lists again after each ``invalidate_caches()``."""
    folders = [entry for entry in sys.path if os.path.isdir(entry or ".")]
    entries = 0
    for folder in folders:
        with contextlib.suppress(OSError):
            entries += len(os.listdir(folder or "."))
    return {"folders": len(folders), "entries": entries}


def agent(method: str) -> None:
    """Serve one method over stdin/stdout: a line ``CANDIDATE`` evaluates once and answers
    ``{"s": seconds}``; ``throughput SECONDS THREADS`` answers the counts; ``quit`` ends."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the protocol
    box = None
    with tempfile.TemporaryDirectory(prefix="selftaught-bench-") as tmp:
        workdir = Path(tmp)
        if method.startswith("throughput-"):
            evaluate, box = sandboxed(None, workers=int(method.removeprefix("throughput-")))
        elif method.startswith("sandbox"):
            evaluate, box = sandboxed(False if method == "sandbox-no-bwrap" else None,
                                      job_cgroups=method != "sandbox-no-cgroups")
        elif method.startswith("write-import"):
            evaluate = write_import(workdir, package=method == "write-import-package")
        elif method == "evaluator-import":
            evaluate = evaluator_import(workdir)
        elif method == "prefork":
            evaluate = Prefork()
        elif method == "subprocess":
            evaluate = fresh_subprocess(workdir)
        else:
            evaluate = {"exec-call": exec_call, "cold": cold}[method]
        after: Callable[[], None] = getattr(evaluate, "refill", lambda: None)  # untimed work between samples
        try:
            first: dict[str, float] = {}
            for name in ("numpy", "trivial", "numpy", "trivial"):  # untimed warm-up; the first call is kept
                began = time.perf_counter()
                value = evaluate(CANDIDATES[name])
                first.setdefault(name, time.perf_counter() - began)
                after()
                assert value == EXPECTED, (method, name, value)
            layers = list(getattr(box, "layers", ()))
            proto.write(json.dumps({"ready": method, "layers": layers, "first_call_s": first,
                                    "sys_path": path_listing()}) + "\n")
            for line in sys.stdin:
                words = line.split()
                if not words or words[0] == "quit":
                    break
                if words[0] == "throughput":
                    proto.write(json.dumps(throughput(box, evaluate, float(words[1]), int(words[2]))) + "\n")
                    continue
                source = CANDIDATES[words[0]]
                began = time.perf_counter()
                value = evaluate(source)
                elapsed = time.perf_counter() - began
                proto.write(json.dumps({"s": elapsed, "ok": value == EXPECTED}) + "\n")
                after()
        finally:
            if box is not None:
                box.close()
