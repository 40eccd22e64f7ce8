"""RaySandbox on a local Ray cluster started once for this module (skipped without ray).

The cluster is started while a fake API key sits in this process's environment, so the tests can
check it reaches neither the actors' processes nor the jobs they run. Each test builds and closes
its own RaySandbox: the cluster has 2 CPUs and every actor takes one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from selftaught.app import start_run
from selftaught.cli import main
from selftaught.config import RunConfig, SandboxConfig
from selftaught.records import Job, RemoteSpec
from selftaught.store import RunStore
from tests.conftest import ScriptedServer

ray = pytest.importorskip("ray")

from selftaught.distributed import RaySandbox, _cluster  # noqa: E402 (after the skip)

pytestmark = pytest.mark.slow

FAKE_KEY = "sk-test-RAY-driver-key-0123456789"
CONFIG = SandboxConfig(workers=2, memory_mb=512, executor="ray")

SLEEPER = Job(source="import time\n\ndef f(x):\n    time.sleep(x)\n    return x\n", entry="f",
              calls=((0.4,),), call_timeout_s=10)


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = FAKE_KEY
    _cluster.connect(ray, "", 2)
    try:
        yield
    finally:
        _cluster.release(ray)
        if old is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = old
    assert not ray.is_initialized()


@pytest.fixture
def sandbox() -> Iterator[RaySandbox]:
    with RaySandbox(CONFIG) as box:
        yield box


def test_jobs_run_on_actors_with_their_sandbox_layers(sandbox: RaySandbox) -> None:
    assert sandbox.layers[0] == "ray"
    assert {"ray:seccomp", "ray:pid-namespace", "local:seccomp"} <= set(sandbox.layers)
    assert len(sandbox.actors) == 2
    job = Job(source="import os\n\ndef f(x):\n    return [x * 2, os.getpid()]\n", entry="f",
              calls=((1,), (2,)), call_timeout_s=5)
    outcome = sandbox.run(job)
    assert outcome.ok and [r.value[0] for r in outcome.results] == [2, 4]
    # Candidate code runs in the actor's sandbox (its own pid namespace), never in the actor.
    actor_pids = {ray.get(a.__ray_call__.remote(lambda _self: os.getpid())) for a in sandbox.actors}
    assert not {r.value[1] for r in outcome.results} & actor_pids
    failing = sandbox.run(Job(source="def f(:\n", entry="f", calls=((1,),), call_timeout_s=5))
    assert not failing.ok and failing.reason


def test_handler_jobs_stay_in_this_process(sandbox: RaySandbox) -> None:
    seen: list[tuple[str, str]] = []
    driver = os.getpid()

    def handler(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        seen.append((remote, method))
        return os.getpid()

    job = Job(source="def f(oracle):\n    return oracle.ask()\n", entry="f", calls=(({"$remote": "oracle"},),),
              call_timeout_s=5, remotes=(RemoteSpec("oracle", {}, ("ask",)),))
    outcome = sandbox.run(job, handler)
    assert outcome.ok and outcome.results[0].value == driver
    assert seen == [("oracle", "ask")]


def test_no_api_key_reaches_an_actor_or_a_job(sandbox: RaySandbox) -> None:
    assert os.environ["OPENAI_API_KEY"] == FAKE_KEY  # the driver has it...
    job = Job(source="import os\n\ndef f():\n    found = dict(os.environ)\n"
                     "    for path in ('/proc/self/environ', '/proc/1/environ'):\n"
                     "        try:\n            found[path] = open(path).read()\n"
                     "        except OSError:\n            pass\n    return repr(found)\n",
              entry="f", calls=((),), call_timeout_s=5)
    outcome = sandbox.run(job)
    assert outcome.ok and "OPENAI_API_KEY" not in outcome.results[0].value
    assert FAKE_KEY not in outcome.results[0].value
    for actor in sandbox.actors:  # ...and so do neither the actor processes nor their raylet
        environ = ray.get(actor.__ray_call__.remote(
            lambda _self: Path("/proc/self/environ").read_text() + Path(f"/proc/{os.getppid()}/environ").read_text()))
        assert FAKE_KEY not in environ and "OPENAI_API_KEY" not in environ


def test_a_killed_actor_is_replaced_and_its_jobs_retried(sandbox: RaySandbox) -> None:
    first = sandbox.actors
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(sandbox.run, SLEEPER) for _ in range(6)]
        time.sleep(0.3)
        ray.kill(first[0])
        outcomes = [future.result(timeout=60) for future in futures]
    assert all(o.ok and o.results[0].value == 0.4 for o in outcomes), [o.reason for o in outcomes]
    later = [sandbox.run(SLEEPER) for _ in range(3)]
    assert all(o.ok for o in later)
    assert len(sandbox.actors) == 2 and first[0] not in sandbox.actors and first[1] in sandbox.actors


def test_a_job_that_keeps_losing_its_actor_fails_as_data() -> None:
    with RaySandbox(CONFIG, attempts=1) as box:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(box.run, SLEEPER)
            time.sleep(0.2)
            ray.kill(box.actors[0])  # the least-loaded pick of an idle pool is the first actor
            outcome = future.result(timeout=60)
        assert not outcome.ok and "lost its Ray sandbox actor" in outcome.reason
        assert box.run(SLEEPER).ok  # the replacement works


def test_close_stops_the_actors_but_not_a_cluster_it_did_not_start() -> None:
    box = RaySandbox(CONFIG)
    actors = box.actors
    box.close()
    box.close()  # idempotent
    assert ray.is_initialized()  # the module's cluster stays up
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actors[0].hello.remote(), timeout=30)


def test_a_replay_on_ray_matches_the_same_replay_run_locally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = ["--task", "lpn", "--lm", "openai:fake-model", "--seed", "1", "--json", "--improver-timeout", "20",
             "--iterations", "1", "--repeats", "2", "--runs-dir", str(tmp_path)]
    with ScriptedServer(hanging=False) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        assert main(["run", *flags]) == 0
        original = json.loads(capsys.readouterr().out)
    run_id = str(original["run_id"])
    assert main(["replay", run_id, "--runs-dir", str(tmp_path), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)

    store = RunStore.in_dir(tmp_path)
    config = RunConfig.from_dict(store.get_run(run_id).config)
    config = dataclasses.replace(config, lm=dataclasses.replace(config.lm, spec=f"replay:{run_id}"),
                                 sandbox=dataclasses.replace(config.sandbox, executor="ray"))
    on_ray = start_run(config, tmp_path, {}).to_json()

    def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
        keys = ("t", "val", "val_se", "test", "test_se", "accepted")
        return [{key: row[key] for key in keys} for row in doc["iterations"]]

    assert [row["t"] for row in steps(on_ray)] == [0, 1]
    assert steps(on_ray) == steps(local) == steps(original)
    assert on_ray["lm_calls"] == local["lm_calls"]
    assert store.get_run(str(on_ray["run_id"])).sandbox_layers[0] == "ray"
    assert ray.is_initialized()  # the module's cluster outlived the run's sandbox
