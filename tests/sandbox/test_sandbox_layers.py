"""Which layers a sandbox reports, the loud warning when bubblewrap is missing, and strict mode."""

from __future__ import annotations

import dataclasses

import pytest

from selftaught.config import SandboxConfig
from selftaught.errors import SandboxError
from selftaught.sandbox import ForkServerSandbox, HostReport, _launch, probe


def test_probe_reports_the_host() -> None:
    report = probe()
    assert isinstance(report, HostReport)
    assert report.bubblewrap == (report.bubblewrap_error == "")


def test_bwrap_layers(bwrap_sandbox: ForkServerSandbox) -> None:
    assert {"bwrap", "pid-namespace", "seccomp", "no-new-privs", "rlimits"} <= set(bwrap_sandbox.layers)
    if probe().root:
        assert "uid" in bwrap_sandbox.layers
    assert bwrap_sandbox.warnings == []


def test_plain_mode_warns_loudly(plain_sandbox: ForkServerSandbox) -> None:
    assert "bwrap" not in plain_sandbox.layers
    assert any("bubblewrap not in use" in w for w in plain_sandbox.warnings)


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(probe(), bubblewrap=False, bubblewrap_error="bwrap failed (exit 1): denied")
    monkeypatch.setattr(_launch, "probe", lambda: broken)


def test_missing_bwrap_falls_back_with_a_warning(no_bwrap: None, sandbox_config: SandboxConfig,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with ForkServerSandbox(dataclasses.replace(sandbox_config, workers=1)) as box:
        assert "bwrap" not in box.layers
    err = capsys.readouterr().err
    assert "selftaught sandbox WARNING: bubblewrap not in use (bwrap failed (exit 1): denied)" in err


def test_strict_refuses_without_bwrap(no_bwrap: None, sandbox_config: SandboxConfig) -> None:
    with pytest.raises(SandboxError, match="strict sandbox refused"):
        ForkServerSandbox(dataclasses.replace(sandbox_config, strict=True, workers=1))


def test_requiring_bwrap_that_does_not_work_raises(no_bwrap: None, sandbox_config: SandboxConfig) -> None:
    with pytest.raises(SandboxError, match="bubblewrap was required"):
        ForkServerSandbox(sandbox_config, bubblewrap=True)
