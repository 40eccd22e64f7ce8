"""Joining or starting the Ray cluster, and the one ``import ray`` of the package.

``connect`` joins ``address`` or, when it is empty, starts a local cluster on this machine. A
local cluster's processes (GCS, raylet, the workers that host our actors) inherit the environment
of the process that starts them, so it is started with an allow-listed environment: the driver's
API keys never reach an actor. Clusters joined by address keep the environment their operator
started them with; Ray does not forward the driver's environment to them. A local cluster is
shared by every ``RaySandbox`` of this process and shut down when the last one releases it.

A local cluster cannot be confined to loopback: Ray turns a node address of 127.0.0.1 into the
machine's reachable address (``services.resolve_ip_for_localhost``) and its gRPC servers (GCS,
raylet, object manager, workers) listen on every interface, with no option to bind elsewhere
(measured with ``ss -ltnp`` on Ray 2.60). What protects it instead: token authentication, which
a cluster started here always has (with ``RAY_AUTH_MODE=disabled`` in the environment ``connect``
refuses to start one; the token file is made readable by its owner only), and sandboxed code,
which cannot open any socket.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selftaught.errors import ConfigError, SandboxError

__all__ = ["CLUSTER_ENV", "connect", "load_ray", "release"]

CLUSTER_ENV: tuple[str, ...] = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
    "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
)
"""Variables a local cluster inherits from the driver (plus every ``RAY_*`` one); nothing else."""

_lock = threading.Lock()
_state = {"started": False, "users": 0}


def load_ray() -> Any:
    """The ``ray`` module, or a ``ConfigError`` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor 'ray' needs Ray, which is not installed: pip install 'selftaught[ray]'") from exc
    return ray


def connect(ray: Any, address: str, num_cpus: int) -> None:
    """Join ``address``, start a local cluster with ``num_cpus`` CPUs when it is empty, or reuse
    the cluster this process is already connected to. Pair every call with ``release``."""
    with _lock:
        if ray.is_initialized():
            if _state["started"]:
                _state["users"] += 1
            return
        try:
            if address:
                ray.init(address=address, include_dashboard=False)
            elif os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
                raise ConfigError("a local Ray cluster listens on every interface, so selftaught starts one only "
                                  "with token authentication: unset RAY_AUTH_MODE=disabled")
            else:
                with _allow_listed_environ():
                    # "local" rather than None: a RAY_ADDRESS in the environment must not redirect us.
                    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                             _node_ip_address="127.0.0.1")
                _private_token()
                _state["started"], _state["users"] = True, 1
        except ConfigError:
            raise
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
            where = f"join the Ray cluster at {address}" if address else "start a local Ray cluster"
            raise SandboxError(f"could not {where}: {type(exc).__name__}: {exc}") from exc


def release(ray: Any) -> None:
    """Forget one ``connect``; shut Ray down when this process started it and nobody still uses it."""
    with _lock:
        if not _state["started"]:
            return
        _state["users"] -= 1
        if _state["users"] <= 0:
            _state["started"], _state["users"] = False, 0
            ray.shutdown()


@contextmanager
def _allow_listed_environ() -> Iterator[None]:
    # Ray copies os.environ into every process it spawns, with no option to pass another one;
    # ``open_session`` builds the sandbox before any LM thread runs, so the swap races nothing.
    saved = dict(os.environ)
    kept = {k: v for k, v in saved.items() if k in CLUSTER_ENV or k.startswith("RAY_")}
    kept.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a run's cluster
    os.environ.clear()
    os.environ.update(kept)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _private_token() -> None:
    """Make the cluster's token file (Ray writes it world-readable) readable by its owner only."""
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    with contextlib.suppress(OSError):
        if path.stat().st_uid == os.geteuid():
            path.chmod(0o600)
