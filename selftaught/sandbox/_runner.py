"""The code that runs a job inside the sandboxed process, talking to the broker over one socket.

It reads the job frame, compiles and executes the untrusted source in a fresh module namespace,
builds proxy objects for the job's remotes, calls the entry once per call and sends each result
back as plain JSON data. It trusts nothing it runs: the untrusted code shares this process, so it
can tamper with this module, but all it can forge that way is its own results, which the broker
treats as untrusted data anyway. Process confinement (rlimits, uid, seccomp) is ``_confine``'s
job, done before this module runs. Standard library only (numpy is used if already imported).
"""

from __future__ import annotations

import contextlib
import random
import socket
import sys
import threading
import time
import types
from typing import Any

from selftaught.sandbox import _wire

__all__ = ["ERROR_CLASSES", "READY_AFTER_S", "serve", "to_plain"]

_MAX_ERROR_CHARS = 2000
READY_AFTER_S = 0.02
"""Loading faster than this is charged to the first call's timeout instead of costing a message."""


class SelftaughtError(Exception):
    """Mirror of the broker's error base; the broker's errors arrive as these classes."""


class ConfigError(SelftaughtError):
    pass


class LMError(SelftaughtError):
    pass


class LMUnavailable(LMError):
    pass


class LMRequestError(LMError):
    pass


class BudgetExceeded(SelftaughtError):
    pass


class SandboxError(SelftaughtError):
    pass


class TaskError(SelftaughtError):
    pass


class StoreError(SelftaughtError):
    pass


class ProxyError(SelftaughtError):
    pass


ERROR_CLASSES: dict[str, type[SelftaughtError]] = {
    cls.__name__: cls
    for cls in (
        SelftaughtError,
        ConfigError,
        LMError,
        LMUnavailable,
        LMRequestError,
        BudgetExceeded,
        SandboxError,
        TaskError,
        StoreError,
        ProxyError,
    )
}


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

    def send(self, message: Any) -> None:
        with self._lock:
            _wire.send(self._sock, message)

    def request(self, remote: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            payload = {"t": "call", "remote": remote, "method": method,
                       "args": to_plain(list(args)), "kwargs": to_plain(kwargs)}
        except Unserializable as exc:
            raise TypeError(f"argument to {remote}.{method} is not JSON data: {exc}") from None
        with self._lock:
            _wire.send(self._sock, payload)
            reply = _wire.recv(self._sock)
        if reply.get("ok"):
            return reply.get("value")
        name = str(reply.get("error_class", "SelftaughtError"))
        cls = ERROR_CLASSES.get(name) or type(name, (SelftaughtError,), {})
        raise cls(str(reply.get("message", "")))


def _make_proxy(spec: dict[str, Any], channel: _Channel) -> Any:
    name = str(spec["name"])
    namespace: dict[str, Any] = {}
    for method in spec.get("methods", []):
        namespace[str(method)] = _remote_method(channel, name, str(method))
    proxy = type(name if name.isidentifier() else "Remote", (), namespace)()
    for key, value in dict(spec.get("attributes", {})).items():
        setattr(proxy, key, value)
    return proxy


def _remote_method(channel: _Channel, remote: str, method: str) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return channel.request(remote, method, args, kwargs)

    call.__name__ = method
    return call


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


def _one_call(function: Any, args: list[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        value = to_plain(function(*args))
        ok, error = True, ""
    except Unserializable as exc:
        value, ok, error = None, False, f"unserializable output: {exc}"
    except BaseException as exc:  # SystemExit from candidates is a failure too
        value, ok, error = None, False, _describe(exc)
    result = {"t": "result", "ok": ok, "value": value, "error": error,
              "elapsed_s": time.perf_counter() - started}
    try:
        _wire.encode(result)
    except (ValueError, _wire.WireError) as exc:
        result.update(ok=False, value=None, error=f"unserializable output: {_describe(exc)}")
    return result


def serve(sock: socket.socket) -> int:
    """Run the job the broker sends on ``sock``; the return value is the process exit code.

    Messages out: ``fail`` (the source cannot provide the entry), ``ready`` (loaded; sent only
    when loading took a while or there are no calls, since each message wakes the broker),
    ``call`` (a remote method; the broker answers ``ok``/``value`` or ``error_class``/``message``)
    and one ``result`` per call. The broker counts results, so there is no closing message.
    """
    started = time.perf_counter()
    channel = _Channel(sock)
    job = _wire.recv(sock)
    function, reason = _load(job)
    _flush()
    if function is None:
        channel.send({"t": "fail", "reason": reason})
        return 0
    if not job["calls"] or time.perf_counter() - started >= READY_AFTER_S:
        channel.send({"t": "ready"})
    proxies = {str(spec["name"]): _make_proxy(spec, channel) for spec in job.get("remotes", [])}
    arrays = {int(i) for i in job.get("array_args", [])}
    numpy = sys.modules.get("numpy")
    for raw in job["calls"]:
        args = [_resolve(arg, proxies) for arg in raw]
        if numpy is not None:
            args = [numpy.asarray(a) if i in arrays else a for i, a in enumerate(args)]
        result = _one_call(function, args)
        _flush()
        channel.send(result)
    return 0


def _resolve(arg: Any, proxies: dict[str, Any]) -> Any:
    if isinstance(arg, dict) and len(arg) == 1 and "$remote" in arg:
        return proxies[str(arg["$remote"])]
    return arg


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # a candidate may have closed or replaced it
            stream.flush()
