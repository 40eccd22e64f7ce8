"""The code that runs a job inside the sandboxed process, talking to the broker over one socket.

It reads the job frame, compiles and executes the untrusted source in a fresh module namespace,
builds proxy objects for the job's remotes, calls the entry once per call and sends each result
back as plain JSON data. The proxies, and the errors their calls raise, follow the proxy contract
(``selftaught.proxy.calls``): the error classes are those of ``selftaught.errors`` themselves.
It trusts nothing it runs: the untrusted code shares this process, so it can tamper with this
module, but all it can forge that way is its own results, which the broker treats as untrusted
data anyway. Process confinement (rlimits, uid, seccomp) is ``_confine``'s job, done before this
module runs. Standard library and the package's plain layers only (numpy is used if already imported).
"""

from __future__ import annotations

import contextlib
import gc
import random
import resource
import signal
import socket
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from selftaught.proxy.calls import ERROR_CLASSES, call_message, make_proxy, unpack_reply
from selftaught.sandbox import _confine, _wire

__all__ = ["ERROR_CLASSES", "serve", "to_plain"]

_MAX_ERROR_CHARS = 2000


class Unserializable(Exception):
    """A value has no plain-JSON form; the message names its type."""


def to_plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data: numpy arrays to lists, numpy scalars to numbers, tuples to lists."""
    if depth > 200:
        raise Unserializable("nesting deeper than 200")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [to_plain(item, depth + 1) for item in value]
    if isinstance(value, dict):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Unserializable(f"dict key {type(key).__name__}")
            plain[key] = to_plain(item, depth + 1)
        return plain
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            if value.dtype.hasobject:
                return to_plain(value.tolist(), depth + 1)
            return value.tolist()
        if isinstance(value, numpy.generic):
            return to_plain(value.item(), depth + 1)
    raise Unserializable(type(value).__name__)


def _describe(exc: BaseException) -> str:
    # A hostile __str__ must not break the runner's own reporting.
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # anything can come out of untrusted code
        text = f"{type(exc).__name__}: <unprintable>"
    return text[:_MAX_ERROR_CHARS]


class _Channel:
    """The socket to the broker; one request at a time, from any thread of the job."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, *messages: Any) -> None:
        """Send ``messages`` in one write (the broker wakes up once for all of them)."""
        self.send_frames(b"".join(_wire.encode(message) for message in messages))

    def send_frames(self, data: bytes) -> None:
        """Send frames already encoded."""
        with self._lock:
            self._sock.sendall(data)

    def request(self, remote: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Ask the broker for ``remote.method(*args, **kwargs)``: its answer, or its error raised here."""
        try:
            payload = call_message(remote, method, to_plain(list(args)), to_plain(kwargs))
        except Unserializable as exc:
            raise TypeError(f"argument to {remote}.{method} is not JSON data: {exc}") from None
        with self._lock:
            _wire.send(self._sock, payload)
            reply = _wire.recv(self._sock)
        return unpack_reply(reply)


def _make_proxy(spec: dict[str, Any], channel: _Channel) -> Any:
    return make_proxy(spec, channel.request)


def _seed(seed: int) -> None:
    """Seed the global generators candidates use, so a job's randomness replays exactly."""
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)


def _load(job: dict[str, Any]) -> tuple[Any, str]:
    """The entry function, or (None, reason) when the source cannot provide it."""
    try:
        code = compile(str(job["source"]), "<candidate>", "exec")
    except SyntaxError as exc:
        return None, f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except BaseException as exc:  # e.g. MemoryError or ValueError (null bytes)
        return None, f"does not compile: {_describe(exc)}"
    _seed(int(job.get("seed", 0)))
    for name, source in job.get("modules", []):
        library = types.ModuleType(str(name))
        try:
            exec(compile(str(source), f"<{name}>", "exec"), library.__dict__)
        except BaseException as exc:
            return None, f"module {name} failed to load: {_describe(exc)}"
        sys.modules[str(name)] = library
    module = types.ModuleType("candidate")
    module.__dict__.update(ERROR_CLASSES)
    sys.modules["candidate"] = module
    try:
        exec(code, module.__dict__)  # confined process; this is the point
    except BaseException as exc:
        return None, f"error while loading: {_describe(exc)}"
    entry = str(job["entry"])
    function = module.__dict__.get(entry)
    if function is None:
        return None, f"entry {entry!r} is not defined"
    if not callable(function):
        return None, f"entry {entry!r} is not callable ({type(function).__name__})"
    return function, ""


# Bound before any candidate code runs: a candidate that replaces ``signal.setitimer`` or
# ``time.process_time`` in its own namespace changes nothing here. (One that patches this module
# itself can still dodge the CPU limit, but not the broker's wall-clock limit.)
_setitimer = signal.setitimer
_install_handler = _confine.set_handler
_process_time = time.process_time
_getrusage = resource.getrusage


class _TimeUp(BaseException):
    """Raised inside a call that used up its CPU time (a BaseException: ``except Exception`` misses it)."""


class _CpuTimer:
    """Interrupts the running call once the process has used ``limit_s`` of CPU time in it.

    ITIMER_PROF counts the CPU time of every thread of the process; after the first expiry it
    fires again every few milliseconds, so a call that swallows ``_TimeUp`` is interrupted again.
    A call that ignores the signal entirely is still stopped by the broker's wall-clock limit.

    ``_TimeUp`` is raised only while the innermost frame is the job's own code: a signal that
    lands while ``_one_call`` itself runs (in its ``except`` clause, say, before ``stop``) only
    marks the call as stopped, so no ``_TimeUp`` can escape the call's ``try``.
    """

    def __init__(self) -> None:
        self.active = False
        self.fired = False
        self.trusted: frozenset[types.CodeType] = frozenset()

    def install(self) -> None:
        self.trusted = frozenset({_one_call.__code__, _cpu_s.__code__, self.start.__code__,
                                  self.stop.__code__, self._on_signal.__code__})
        _install_handler(signal.SIGPROF, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.active:
            self.fired = True
            if frame is None or frame.f_code not in self.trusted:
                raise _TimeUp

    def start(self, limit_s: float) -> None:
        self.fired = False
        self.active = True
        _setitimer(signal.ITIMER_PROF, max(limit_s, 1e-4), 0.005)

    def stop(self) -> None:
        self.active = False
        _setitimer(signal.ITIMER_PROF, 0.0)


_TIMER = _CpuTimer()


def _cpu_s() -> float:
    """CPU seconds used by this process (all threads) and its waited-for children."""
    children = _getrusage(resource.RUSAGE_CHILDREN)
    return _process_time() + children.ru_utime + children.ru_stime


def _one_call(function: Any, args: list[Any], limit_s: float | None) -> bytes:
    """Call ``function``; with ``limit_s``, stop it after that much CPU time and say so. The
    result message comes back as its frame, encoded once."""
    value: Any = None
    ok, error, timed_out = False, "", False
    started = _cpu_s()
    try:
        if limit_s is not None:
            _TIMER.start(limit_s)
        raw = function(*args)
        _TIMER.stop()
        value, ok = raw, True
    except _TimeUp:
        _TIMER.stop()
        timed_out = True
    except BaseException as exc:  # SystemExit from candidates is a failure too
        _TIMER.stop()
        error = _describe(exc)
    cpu_s = _cpu_s() - started
    if limit_s is not None and (timed_out or _TIMER.fired or cpu_s > limit_s):
        value, ok, timed_out = None, False, True
        error = f"timeout: used more than {limit_s:g} s of CPU time"
    if ok:
        try:
            value = to_plain(value)
        except Unserializable as exc:
            value, ok, error = None, False, f"unserializable output: {exc}"
        except BaseException as exc:  # a hostile __iter__ or __len__ in the output
            value, ok, error = None, False, f"unserializable output: {_describe(exc)}"
    result = {"t": "result", "ok": ok, "value": value, "error": error, "timed_out": timed_out,
              "cpu_s": cpu_s}
    try:
        return _wire.encode(result)
    except (ValueError, _wire.WireError) as exc:
        result.update(ok=False, value=None, error=f"unserializable output: {_describe(exc)}")
    return _wire.encode(result)


def serve(sock: socket.socket, begin: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Run the job the broker sends on ``sock``; the return value is the process exit code.

    Messages in: a settings frame (``cpu_rlimit_s``), handed to ``begin`` before anything else,
    then the job frame.
    Messages out: ``fail`` (the source cannot provide the entry) or ``ready`` (start-up done:
    the job decoded and the source loaded), then per call ``start`` (the call's limit starts
    now) and ``result``; ``call`` asks the broker for a remote method (answered with
    ``ok``/``value`` or ``error_class``/``message``). The broker counts results, so there is no
    closing message. With ``cpu_limit_s`` in the job, each call is interrupted once it has used
    that much CPU time.
    """
    channel = _Channel(sock)
    settings = _wire.recv(sock)
    if begin is not None:
        begin(settings)
    job = _wire.recv(sock)
    function, reason = _load(job)
    _flush()
    if function is None:
        channel.send({"t": "fail", "reason": reason})
        return 0
    limit = job.get("cpu_limit_s")
    limit_s = float(limit) if isinstance(limit, int | float) else None
    if limit_s is not None:
        _TIMER.install()
    proxies = {str(spec["name"]): _make_proxy(spec, channel) for spec in job.get("remotes", [])}
    arrays = {int(i) for i in job.get("array_args", [])}
    numpy = sys.modules.get("numpy")
    calls = job["calls"]
    del job
    # What start-up allocated (the decoded calls above all) is never garbage: keep the collector
    # from walking it during the calls, which are timed.
    gc.freeze()
    ready: tuple[dict[str, str], ...] = ({"t": "ready"},)
    for index in range(len(calls)):
        raw, calls[index] = calls[index], None
        args = [_resolve(arg, proxies) for arg in raw]
        if numpy is not None:
            args = [numpy.asarray(a) if i in arrays else a for i, a in enumerate(args)]
        channel.send(*ready, {"t": "start"})  # the first call's start goes out with ``ready``
        ready = ()
        result = _one_call(function, args, limit_s)
        del args, raw
        _flush()
        channel.send_frames(result)
    if ready:
        channel.send(*ready)  # a job without calls
    return 0


def _resolve(arg: Any, proxies: dict[str, Any]) -> Any:
    if isinstance(arg, dict) and len(arg) == 1 and "$remote" in arg:
        return proxies[str(arg["$remote"])]
    return arg


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # a candidate may have closed or replaced it
            stream.flush()
