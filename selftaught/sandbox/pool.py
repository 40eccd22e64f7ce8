"""``ForkServerSandbox``: the production ``Sandbox``, a pool of warm fork-server workers.

Each job gets a fresh process tree forked from a worker that has numpy imported, so a job costs
milliseconds. Jobs run concurrently from any number of threads; a semaphore with one slot per
worker bounds how many compute at once, and a job waiting on its handler gives its slot back, so
nesting (improver -> handler -> solution job) cannot deadlock. Layers in force on this host are
decided once at construction and exposed as ``layers``; weaker-than-full isolation is reported
loudly on stderr and in ``warnings`` (``SandboxConfig.strict`` makes it an error instead).
Protocol details live in ``_job_run``, ``_attempt``, ``_reaper`` and ``_worker_handle`` (broker side)
and in ``_forkserver_main``, ``_jobstart`` and ``_runner`` (inside the worker); ``_launch`` builds
the bubblewrap command line. The package docstring draws the path of one job.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from selftaught.config import SandboxConfig
from selftaught.errors import SandboxError
from selftaught.records import Job, Outcome
from selftaught.sandbox import _cgroup, _launch
from selftaught.sandbox._job_run import JobRun, SizeLimits, Slots
from selftaught.sandbox._reaper import Reaper
from selftaught.sandbox._worker_handle import Spare, WorkerHandle
from selftaught.sandbox.base import Handler

__all__ = ["DEFAULT_PRELOAD", "ForkServerSandbox"]

DEFAULT_PRELOAD: tuple[str, ...] = (
    "numpy", "json", "math", "random", "itertools", "collections", "functools", "heapq", "bisect",
    "re", "string", "copy", "typing", "dataclasses", "statistics", "fractions", "decimal",
)
"""Modules every worker imports once, so jobs that use them start warm."""

_UID_BASE_RANGE = (1_000_000, 2_000_000_000)
_UIDS_PER_SANDBOX = 100_000  # split among the workers, each of which gives every spare the next uid
_MB = 1024 * 1024


class ForkServerSandbox:
    """Runs untrusted jobs in forked, confined processes; safe to call from many threads."""

    def __init__(self, config: SandboxConfig, *, bubblewrap: bool | None = None,
                 preload: Sequence[str] = DEFAULT_PRELOAD) -> None:
        """Start ``config.workers`` workers.

        ``bubblewrap``: None uses it when the host allows, False never does (the rlimit, seccomp
        and pid-namespace layers still apply), True requires it. Raises ``SandboxError`` when a
        required layer is missing or a worker cannot start.
        """
        self.config = config
        host = _launch.probe()
        self._use_bwrap = host.bubblewrap if bubblewrap is None else bubblewrap
        self.warnings: list[str] = []
        if self._use_bwrap and not host.bubblewrap:
            raise SandboxError(f"bubblewrap was required but does not work: {host.bubblewrap_error}")
        if not self._use_bwrap:
            why = "disabled by the caller" if bubblewrap is False else host.bubblewrap_error
            self.warnings.append(f"bubblewrap not in use ({why}): sandboxed code can read the host "
                                 "filesystem where its uid may; its network is cut by seccomp only")
        self._dir = Path(tempfile.mkdtemp(prefix="selftaught-sandbox-"))
        self._dir.chmod(0o711)
        self._settings: dict[str, Any] = {
            "env": dict(_launch.SANDBOX_ENV),
            "preload": list(preload),
            "pid_namespaces": True,
            "seccomp": True,
            "drop_uid": host.root,
            "private_mounts": not self._use_bwrap,  # bwrap already gives the worker its own view
            "expose": [] if self._use_bwrap else _launch.hidden_paths(),
            "tmpfs_mb": config.tmpfs_mb,
        }
        self._lock = threading.Lock()
        self._slots = Slots(config.workers)
        self._uid_base = random.SystemRandom().randrange(*_UID_BASE_RANGE)
        self._reaper = Reaper()
        self._closed = False
        # Workers are launched from long-lived threads (one per worker, so they start together):
        # bwrap's --die-with-parent fires when the *thread* that started it exits, which an
        # arbitrary caller thread may soon do.
        self._launcher = ThreadPoolExecutor(config.workers, thread_name_prefix="selftaught-sandbox-launcher")
        self._workers: list[WorkerHandle] = []
        # Per-job cgroups need root (to create them) and the uid drop (so jobs cannot rewrite them).
        self._cgroups, cgroup_error = (None, "switched off (sandbox.job_cgroups)") if not config.job_cgroups \
            else _cgroup.CgroupHost.create() if host.root else (None, "not running as root")
        # Also runs at interpreter exit, so a sandbox nobody closed leaves no process, dir or cgroup.
        self._finalizer = weakref.finalize(self, _shut_down, self._workers, self._launcher, self._dir,
                                           self._cgroups, self._reaper)
        try:
            futures = [self._launcher.submit(self._start_worker, i) for i in range(config.workers)]
            self._workers.extend(f.result() for f in futures)
        except BaseException:
            self.close()
            raise
        hello = self._workers[0].hello
        self._layers = self._compute_layers(hello)
        self.warnings += [str(note) for note in hello.get("notes", [])]
        if not hello.get("seccomp"):
            self.warnings.append("seccomp is not active: sandboxed code may open network sockets")
        if host.root and not hello.get("uid_drop"):
            self.warnings.append("sandboxed code keeps uid 0 (without capabilities): RLIMIT_NPROC does not "
                                 "bound fork bombs and root-owned files stay readable")
        if host.root and config.job_cgroups and not hello.get("cgroups"):
            why = cgroup_error or "the workers could not use them"
            self.warnings.append(f"no cgroup per job ({why}): memory_mb bounds each process, not a job's "
                                 "process tree, and max_processes relies on RLIMIT_NPROC")
        if not hello.get("pid_namespaces"):
            self.warnings.append("no pid namespace per job: whole-tree kills rely on a subreaper sweep")
        if config.strict and self.warnings:
            self.close()
            raise SandboxError("strict sandbox refused: " + "; ".join(self.warnings))
        for warning in self.warnings:
            print(f"selftaught sandbox WARNING: {warning}", file=sys.stderr, flush=True)

    @property
    def layers(self) -> tuple[str, ...]:
        """The isolation layers in force, e.g. ``("fork", "rlimits", "bwrap", "seccomp", ...)``."""
        return self._layers

    def run(self, job: Job, handler: Handler | None = None) -> Outcome:
        """Run ``job`` to completion, failure or timeout; candidate faults come back as data."""
        if job.call_timeout_s <= 0:
            raise SandboxError(f"call_timeout_s must be positive, not {job.call_timeout_s}")
        for name in ("startup_timeout_s", "deadline_s"):
            value = getattr(job, name)
            if value is not None and not value > 0:
                raise SandboxError(f"{name} must be positive, not {value}")
        sizes = SizeLimits(self.config.max_result_kb * 1024, self.config.max_job_mb * _MB, self.config.max_job_values)
        return JobRun(job, handler, self._slots, self.config.output_limit_kb * 1024, self._take_spare,
                      self._reaper, sizes).run()

    def close(self) -> None:
        """Stop every worker and its jobs; nothing is left running afterwards."""
        with self._lock:
            self._closed = True
        self._finalizer()

    def __enter__(self) -> ForkServerSandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    def _start_worker(self, index: int) -> WorkerHandle:
        # Runs on the launcher thread only.
        settings = dict(self._settings)
        if self._use_bwrap:
            settings["scratch_root"] = _launch.BWRAP_SCRATCH_ROOT
        else:
            settings["scratch_root"] = str(self._dir / f"scratch-{index}")
        per_worker = _UIDS_PER_SANDBOX // self.config.workers
        settings["uid_base"], settings["uid_count"] = self._uid_base + index * per_worker, per_worker
        settings["limits"] = self._limits()
        binds: list[tuple[str, str]] = []
        host_dirs: dict[str, str] = {}
        if self._cgroups is not None:
            dirs = host_dirs = self._cgroups.worker_dirs(index)
            if self._use_bwrap:  # the worker sees its folders at a neutral path inside bwrap
                binds = [(path, f"{_launch.CGROUP_MOUNT}/{name}") for name, path in dirs.items()]
                dirs = {name: inside for (_, inside), name in zip(binds, dirs, strict=True)}
            settings["cgroups"] = {"version": self._cgroups.version, "dirs": dirs,
                                   "memory_bytes": self.config.memory_mb * _MB,
                                   "max_processes": self.config.max_processes}
        worker = WorkerHandle(index, self._use_bwrap, settings, self._dir, self.config.tmpfs_mb, self._reaper, binds,
                              host_dirs)
        worker.start()
        return worker

    def _pick_worker(self) -> WorkerHandle:
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            for i, worker in enumerate(self._workers):
                if not worker.alive:  # died (its jobs died with it): start a fresh one
                    worker.stop()
                    self._workers[i] = self._launcher.submit(self._start_worker, worker.index).result()
            # A worker with a spare queued first (its job starts at once), then the least busy.
            return min(self._workers, key=lambda w: (not w.has_spare, w.in_flight))

    def _take_spare(self, timeout_s: float) -> Spare | str:
        """A confined spare for one job process (from a worker that has one queued, else the least
        busy), or why there is none."""
        return self._pick_worker().take(timeout_s)

    def _limits(self) -> dict[str, int]:
        """Every job's rlimits but CPU, which depends on its deadline (``_attempt`` sends it with
        the job). NPROC counts per uid, so the worker drops it when jobs keep uid 0."""
        return {"AS": self.config.memory_mb * _MB, "FSIZE": self.config.file_size_mb * _MB,
                "NOFILE": self.config.open_files, "CORE": 0, "NPROC": self.config.max_processes}

    def _compute_layers(self, hello: dict[str, Any]) -> tuple[str, ...]:
        layers = ["fork", "new-session", "rlimits", "clean-env", "scratch-dir"]
        if hello.get("pid_namespaces"):
            layers.append("pid-namespace")
        else:
            layers.append("subreaper")
        if hello.get("private_mounts"):
            layers.append("mount-namespace")
        layers.append("uid" if hello.get("uid_drop") else "no-capabilities")
        layers.append("no-new-privs")
        if hello.get("seccomp"):
            layers.append("seccomp")
        if hello.get("cgroups"):
            layers.append(f"cgroup-v{int(hello['cgroups'])}")
        if self._use_bwrap:
            layers.append("bwrap")
        return tuple(layers)


def _shut_down(workers: list[WorkerHandle], launcher: ThreadPoolExecutor, directory: Path,
               cgroups: _cgroup.CgroupHost | None, reaper: Reaper) -> None:
    for worker in list(workers):
        worker.stop()
    workers.clear()
    reaper.stop()  # the workers reported every job gone as they stopped
    launcher.shutdown(wait=True)
    shutil.rmtree(directory, ignore_errors=True)
    if cgroups is not None:
        cgroups.remove()
