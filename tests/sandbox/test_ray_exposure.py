"""What protects a local Ray cluster that selftaught starts. Ray cannot bind it to loopback (it
resolves 127.0.0.1 to the node's address and its gRPC servers listen on every interface), so the
cluster must run with token authentication and a private token, and without the driver's keys."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from selftaught.distributed import _cluster  # noqa: E402 (after the skip)
from selftaught.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "OPENAI_API_KEY")}
    os.environ.pop("RAY_AUTH_MODE", None)
    os.environ["OPENAI_API_KEY"] = "sk-test-RAY-EXPOSURE-0123"
    _cluster.connect(ray, "", 1)
    try:
        yield
    finally:
        _cluster.release(ray)
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_no_local_cluster_without_token_authentication(monkeypatch: pytest.MonkeyPatch) -> None:
    if ray.is_initialized():
        pytest.skip("a cluster is already connected in this process")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(ConfigError, match="token authentication"):
        _cluster.connect(ray, "", 1)
    assert not ray.is_initialized()


def _cluster_pids() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in ("gcs_server", "raylet"):
                environ = (entry / "environ").read_bytes().decode(errors="replace")
                if "RAY_" in environ:
                    found[int(entry.name)] = environ
    return found


def test_a_local_cluster_listens_only_with_token_authentication(cluster: None) -> None:
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout
    ours = {pid: env for pid, env in _cluster_pids().items() if f"pid={pid}," in listening}
    assert ours, listening
    for environ in ours.values():
        variables = dict(item.split("=", 1) for item in environ.split("\0") if "=" in item)
        assert variables.get("RAY_AUTH_MODE") == "token"
        assert "OPENAI_API_KEY" not in variables
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if token.exists():
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
