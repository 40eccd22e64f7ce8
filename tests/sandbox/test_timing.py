"""Each call's elapsed time is the call's own wall time, whether or not the job announced itself ready."""

from selftaught.config import SandboxConfig
from selftaught.records import Job
from selftaught.sandbox import ForkServerSandbox


def test_call_times_are_measured_from_the_job_start() -> None:
    with ForkServerSandbox(SandboxConfig(workers=1)) as sandbox:
        source = "import time\ndef f(seconds):\n    time.sleep(seconds)\n    return seconds\n"
        outcome = sandbox.run(Job(source, "f", ((0.0,), (0.3,)), call_timeout_s=5.0))
    assert outcome.ok
    fast, slow = (result.elapsed_s for result in outcome.results)
    assert 0.0 <= fast < 1.0
    assert 0.3 <= slow < 2.0
