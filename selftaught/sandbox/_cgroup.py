"""Control groups: a memory and a process-count limit for each job's whole process tree.

An rlimit counts one process's address space; a job that forks children, each filling its own
limit, holds several times ``memory_mb``. A cgroup counts the tree (and the IPC and page-cache
memory it charges) together. The broker side (``CgroupHost``) finds what the host offers, once:

* cgroup v2 with the ``memory`` and ``pids`` controllers delegable under our own cgroup
  (``memory.max``, ``memory.swap.max``, ``pids.max``), or
* cgroup v1 ``memory`` and ``pids`` hierarchies we may write (``memory.limit_in_bytes``,
  ``memory.memsw.limit_in_bytes`` where swap accounting exists, ``pids.max``).

It creates a uniquely named parent (``selftaught-PID-HEX``) under the broker's own cgroup in each
hierarchy and one folder per worker below it, and removes them all on ``remove``; folders left by
a broker that was killed (its pid is gone) are removed by the next one that starts there. The
worker side (``JobCgroups``, run by the fork server) creates ``job-jN`` inside its worker folder
with the limits set; the job's first process moves itself in before it runs any untrusted code;
once the job's tree is gone the folder serves a later job (a few dozen at most), then is removed.
Where none of this works the rlimits alone apply, and the sandbox's layers say so. Standard
library only: the worker side runs inside the sandbox.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupHost", "JobCgroups"]

_MOUNTS = "/proc/self/mounts"
_OWN = "/proc/self/cgroup"


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, options) of every cgroup mount."""
    found = []
    with contextlib.suppress(OSError), open(_MOUNTS) as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                found.append((parts[1], parts[2], set(parts[3].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Our cgroup path per v1 controller, and under ``""`` the v2 path."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError), open(_OWN) as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _write(path: str | Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Tree:
    version: int
    parents: dict[str, Path]  # controller ("memory", "pids"; "unified" for v2) -> our parent folder


class CgroupHost:
    """The broker's cgroup parent folders; ``CgroupHost.create()`` returns None (and why) where
    the host offers no writable memory and pids controllers."""

    def __init__(self, tree: _Tree) -> None:
        self.version = tree.version
        self._parents = tree.parents

    @classmethod
    def create(cls) -> tuple[CgroupHost | None, str]:
        errors: list[str] = []
        for attempt in (_try_v2, _try_v1):
            try:
                tree = attempt()
            except OSError as exc:
                errors.append(f"{attempt.__name__[5:]}: {exc.strerror or exc}")
                continue
            if tree is not None:
                return cls(tree), ""
        return None, "; ".join(errors) or "no cgroup memory and pids controllers are mounted"

    @property
    def parents(self) -> dict[str, Path]:
        return dict(self._parents)

    def worker_dirs(self, index: int) -> dict[str, str]:
        """Create (empty) and return the folders of worker ``index``, per controller."""
        dirs: dict[str, str] = {}
        for controller, parent in self._parents.items():
            folder = parent / f"worker-{index}"
            folder.mkdir(mode=0o755, exist_ok=True)
            if self.version == 2:
                _write(folder / "cgroup.subtree_control", "+memory +pids")
            dirs[controller] = str(folder)
        return dirs

    def remove(self) -> None:
        """Remove every folder below and including our parents (their processes are gone by now)."""
        for parent in self._parents.values():
            _remove_tree(parent)


def _remove_tree(folder: Path) -> None:
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.is_dir():
            _remove_tree(child)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _unique() -> str:
    return f"selftaught-{os.getpid()}-{os.urandom(4).hex()}"


def _sweep(base: Path) -> None:
    """Remove what brokers that were killed (pid gone) left under ``base``; their jobs are gone too."""
    with contextlib.suppress(OSError):
        for folder in base.glob("selftaught-*-*"):
            pid = folder.name.split("-")[1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                _remove_tree(folder)


def _try_v2() -> _Tree | None:
    mount = next((point for point, kind, _ in _mounts() if kind == "cgroup2"), None)
    own = _own_paths().get("")
    if mount is None or own is None:
        return None
    base = Path(mount) / own.lstrip("/")
    if not {"memory", "pids"} <= set((base / "cgroup.controllers").read_text().split()):
        return None
    # Our own cgroup must hand both controllers down (it fails while it holds processes itself,
    # unless the host delegated a subtree to us); then our parent hands them to the workers.
    enabled = set((base / "cgroup.subtree_control").read_text().split())
    if not {"memory", "pids"} <= enabled:
        _write(base / "cgroup.subtree_control", "+memory +pids")
    _sweep(base)
    parent = base / _unique()
    parent.mkdir(mode=0o755)
    try:
        _write(parent / "cgroup.subtree_control", "+memory +pids")
    except OSError:
        parent.rmdir()
        raise
    return _Tree(2, {"unified": parent})


def _try_v1() -> _Tree | None:
    mounts = {option: Path(point) for point, kind, options in _mounts() if kind == "cgroup"
              for option in options & {"memory", "pids"}}
    if set(mounts) != {"memory", "pids"}:
        return None
    own = _own_paths()
    name = _unique()
    parents: dict[str, Path] = {}
    try:
        for controller, mount in sorted(mounts.items()):
            _sweep(mount / own.get(controller, "/").lstrip("/"))
            parent = mount / own.get(controller, "/").lstrip("/") / name
            parent.mkdir(mode=0o755)
            parents[controller] = parent
    except OSError:
        for parent in parents.values():
            _remove_tree(parent)
        raise
    return _Tree(1, parents)


class JobCgroups:
    """The fork server's side: a cgroup per job in the worker's folders (``dirs``).

    A job's folders are reused for later jobs once its tree is gone (making and removing a
    memory cgroup costs more than the rest of a job's cgroup work), at most ``REUSES`` times, so
    what a job leaves charged there (reclaimable page cache, slab) cannot pile up. The limit
    counters only ever grow, so each use starts from the values its folder had when the previous
    job there was gone (``release``), and reports what changed since (``events(name, baseline)``).
    Plain ``os`` calls on string paths: this is on every job's path.
    """

    REUSES = 32

    def __init__(self, version: int, dirs: dict[str, str], memory_bytes: int, max_processes: int) -> None:
        self.version = version
        self.memory_bytes = memory_bytes
        self.max_processes = max_processes
        self._dirs = {controller: str(path) for controller, path in dirs.items()}
        unified = version == 2
        self._counters = {  # what ``events`` reads: (controller folder, file, field)
            "oom_kills": ("unified" if unified else "memory", "memory.events" if unified else "memory.oom_control",
                          "oom_kill"),
            "pids_refused": ("unified" if unified else "pids", "pids.events", "max")}
        self._names = itertools.count()
        self._free: list[str] = []  # empty folders with their limits set, ready for a job
        self._uses: dict[str, int] = {}  # folder name -> jobs it has held
        self._counts: dict[str, dict[str, int]] = {}  # free folder name -> its counters (``read``)
        self._retired: list[str] = []  # folders to remove once the kernel lets go of them

    def check(self) -> None:
        """Create, limit and remove a throwaway job folder; OSError when that does not work here."""
        self._make("probe")
        if not self._remove("probe"):
            raise OSError("cannot remove a job cgroup")

    def acquire(self) -> tuple[str, tuple[str, ...], dict[str, int]]:
        """Folders for one job: their name, their ``cgroup.procs`` files (the job's first process
        moves itself in) and the counters' values now (``events`` reports changes from them)."""
        if self._free:
            name = self._free.pop()
            baseline = self._counts.pop(name, {})  # empty since: nothing can have changed them
        else:
            name = f"j{next(self._names)}"
            self._make(name)
            self._uses[name] = 0
            baseline = {}
        self._uses[name] += 1
        return name, tuple(f"{base}/job-{name}/cgroup.procs" for base in self._dirs.values()), baseline

    def release(self, name: str, counts: dict[str, int]) -> None:
        """The job in ``name`` is gone (its tree reaped) and ``counts`` are its folders'
        counters now (``read``): keep the folders for another job, or remove them after
        ``REUSES`` jobs (retrying later if the kernel still holds them)."""
        if self._uses.get(name, self.REUSES) < self.REUSES:
            self._free.append(name)
            self._counts[name] = counts
        else:
            self._uses.pop(name, None)
            self._retired.append(name)
        self._retired = [old for old in self._retired if not self._remove(old)]

    def _make(self, name: str) -> None:
        made: list[str] = []
        try:
            for controller, base in self._dirs.items():
                folder = f"{base}/job-{name}"
                os.mkdir(folder, 0o755)
                made.append(folder)
                for file, value in self._limits(controller):
                    try:
                        _write(f"{folder}/{file}", value)
                    except FileNotFoundError:
                        if "swap" not in file and "memsw" not in file:
                            raise  # swap accounting is optional; the limits themselves are not
        except OSError:
            for folder in made:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            raise

    def _limits(self, controller: str) -> list[tuple[str, str]]:
        memory, pids = str(self.memory_bytes), str(self.max_processes)
        if self.version == 2:
            return [("memory.max", memory), ("memory.swap.max", "0"), ("pids.max", pids)]
        if controller == "memory":
            # memsw (memory + swap) must not be below the memory limit, so it is set second.
            return [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)]
        return [("pids.max", pids)]

    def events(self, name: str, baseline: dict[str, int] | None = None) -> dict[str, int]:
        """What the limits did to the job in ``name`` since ``baseline``: ``oom_kills``
        (processes killed at the memory limit) and ``pids_refused`` (forks refused at the
        process limit), where the host counts them; zero counts are left out."""
        return changes(self.read(name), baseline or {})

    def read(self, name: str) -> dict[str, int]:
        """The limit counters of ``name``'s folders as the kernel has them (those it has)."""
        found: dict[str, int] = {}
        for key, (controller, file, field) in self._counters.items():
            base = self._dirs.get(controller)
            if base is None:
                continue
            try:
                text = _read_file(f"{base}/job-{name}/{file}")
            except (OSError, UnicodeDecodeError):
                continue
            for line in text.splitlines():
                label, _, number = line.partition(" ")
                if label == field and number.isdigit():
                    found[key] = int(number)
        return found

    def _remove(self, name: str) -> bool:
        """Remove ``name``'s folders; False if one is still busy (retry later)."""
        done = True
        for base in self._dirs.values():
            try:
                os.rmdir(f"{base}/job-{name}")
            except FileNotFoundError:
                continue
            except OSError:
                done = False
        return done


def changes(counts: dict[str, int], baseline: dict[str, int]) -> dict[str, int]:
    """The counters that grew since ``baseline``, by how much."""
    return {key: count - baseline.get(key, 0) for key, count in counts.items() if count > baseline.get(key, 0)}


def _read_file(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)
