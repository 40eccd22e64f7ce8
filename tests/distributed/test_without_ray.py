"""Without Ray installed, asking for the ray executor is one clear configuration error."""

from __future__ import annotations

import sys

import pytest

from selftaught.config import SandboxConfig
from selftaught.distributed import RaySandbox
from selftaught.errors import ConfigError


def test_missing_ray_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes ``import ray`` fail as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'selftaught\[ray\]'"):
        RaySandbox(SandboxConfig(executor="ray"))
