"""The broker bounds every score itself: a task whose scorer overshoots cannot inflate a run."""

from __future__ import annotations

from pathlib import Path

from selftaught.broker import Broker
from selftaught.config import Budgets, SandboxConfig
from selftaught.lm import ScriptedLM
from selftaught.sandbox import ForkServerSandbox
from selftaught.store import RunRecorder, RunStore
from selftaught.tasks import get_task

# A task file whose scorer does not clip (define_task would): the broker's own check must.
OVERSHOOTING_TASK = '''
from selftaught.records import Instance, Score


class Overshoot:
    name = "overshoot"
    entry = "algorithm"
    description = "returns its argument; the scorer passes it on unchecked"
    initial_solution = "def algorithm(x):\\n    return x\\n"
    call_timeout_s = 5.0
    array_args = frozenset()

    def instances(self, split):
        return [Instance((1.7,)), Instance((0.5,)), Instance((-0.4,)), Instance((float("inf"),))]

    def score(self, instance, output):
        return Score(float(output), "")


TASK = Overshoot()
'''


def test_out_of_range_scores_are_clipped_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "overshoot_task.py"
    path.write_text(OVERSHOOTING_TASK)
    task = get_task(str(path))
    store = RunStore(":memory:")
    run_id = store.create_run(task.name, "scripted", 0, {}, [])
    with ForkServerSandbox(SandboxConfig()) as sandbox:
        broker = Broker(sandbox, ScriptedLM(lambda request, k: ""), RunRecorder(store, run_id), Budgets())
        result = broker.evaluate(task.initial_solution, task, "val", "v")
    # 1.7 -> 1, 0.5 stays, -0.4 -> 0, inf -> 0 (not finite): the mean of 1, 0.5, 0, 0.
    assert result.score == 0.375
    events = store._db.execute("SELECT kind, detail, program_id FROM events WHERE run_id=?", (run_id,)).fetchall()
    assert sorted(detail for kind, detail, _ in events if kind == "score_out_of_range") == [
        "overshoot: raw score -0.4", "overshoot: raw score 1.7", "overshoot: raw score inf"]
    assert {program_id for _, _, program_id in events} == {result.program_id}
