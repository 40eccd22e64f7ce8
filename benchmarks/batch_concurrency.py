"""Wall time of one ``batch_prompt`` with k distinct messages against an LM with a fixed latency.

A beam-search improver sends k different prompts in one call. The broker sends them together,
within ``lm.concurrency`` (default 4), so a batch should take about ceil(k / concurrency)
latencies instead of k. The LM is the fake OpenAI-compatible server over loopback (the real
``openai`` SDK), every request answered after ``LATENCY_S``; the time is measured inside the
sandboxed improver around its one call, so sandbox start-up is not counted.
Run: .venv/bin/python benchmarks/batch_concurrency.py   (about half a minute)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, machine_line, write  # noqa: E402

from selftaught.broker import Broker  # noqa: E402
from selftaught.config import Budgets, SandboxConfig  # noqa: E402
from selftaught.lm import ConcurrencyLimitedLM, FakeOpenAIServer, OpenAICompatibleLM, Reply  # noqa: E402
from selftaught.meta_utility import TaskUtility  # noqa: E402
from selftaught.sandbox import ForkServerSandbox  # noqa: E402
from selftaught.store import RunRecorder, RunStore  # noqa: E402
from selftaught.tasks import get_task  # noqa: E402

LATENCY_S = 1.0
SIZES = (1, 2, 4, 6)
LIMITS = (4, 1)
BEAM = """
def improve_algorithm(initial_solution, utility, language_model):
    import time
    started = time.monotonic()
    language_model.batch_prompt("expert", [f"variant {i}" for i in range(language_model.max_responses_per_call)])
    return repr(time.monotonic() - started)
"""


def one_batch(sandbox: ForkServerSandbox, server: FakeOpenAIServer, k: int, limit: int) -> float:
    lm = OpenAICompatibleLM("bench", api_key="sk-bench-0123456789", base_url=server.base_url, timeout_s=30)
    store = RunStore(":memory:")
    run_id = store.create_run("lpn", lm.name, 0, {}, [], "benchmark")
    broker = Broker(sandbox, ConcurrencyLimitedLM(lm, limit), RunRecorder(store, run_id),
                    Budgets(lm_calls=1, responses_per_call=k, utility_calls=1, improver_timeout_s=120))
    task = get_task("lpn")
    run = broker.improve(BEAM, task.initial_solution, TaskUtility(broker, task, "train"), f"k{k}/l{limit}")
    if run.solution is None:
        raise RuntimeError(run.reason)
    return float(run.solution)


def main() -> None:
    info = machine()
    rows = []
    with ForkServerSandbox(SandboxConfig()) as sandbox, \
            FakeOpenAIServer(Reply(text="an answer", delay_s=LATENCY_S)) as server:
        for limit in LIMITS:
            for k in SIZES:
                seconds = one_batch(sandbox, server, k, limit)
                rows.append({"messages": k, "concurrency": limit, "seconds": round(seconds, 3),
                             "bound_s": math.ceil(k / limit) * LATENCY_S})
    lines = [f"# One batch_prompt of k distinct messages, {LATENCY_S:g} s per LM request", "",
             machine_line(info), "",
             "| k | concurrency | wall s | ceil(k / concurrency) x latency |", "|---|---|---|---|"]
    lines += [f"| {r['messages']} | {r['concurrency']} | {r['seconds']:.2f} | {r['bound_s']:.0f} |" for r in rows]
    write("batch_concurrency", {"machine": info, "latency_s": LATENCY_S, "rows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
