"""A proxy call and its answer on the wire, both ends of it: the sandboxed runner imports this too.

A job's remotes travel as ``{"name", "attributes", "methods"}`` (``spec_message``); inside the
sandbox each becomes an object (``make_proxy``) whose methods send
``{"t": "call", "remote", "method", "args", "kwargs"}`` (``call_message``). The broker answers
``{"ok": true, "value": ...}`` (``reply_value``) or ``{"ok": false, "error_class": NAME,
"message": TEXT}`` (``reply_error``), and the sandbox returns the value or raises
``ERROR_CLASSES[NAME]`` (``unpack_reply``).

``ERROR_CLASSES`` is generated from ``selftaught.errors``: the classes raised inside the sandbox
are the very classes the broker raises, so the hierarchy is the same on both sides (``except
LMError`` in an improver catches ``PromptRejected``; ``except BudgetExceeded`` does not catch
``RunCapExceeded``). An error the broker raises of a class defined elsewhere travels as its
nearest ancestor in ``selftaught.errors``.

Imports only the standard library and ``errors`` (``records`` for annotations only), so a sandbox
worker loads nothing else of the package for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from selftaught import errors
from selftaught.errors import SelftaughtError

if TYPE_CHECKING:  # annotations only: the sandboxed runner imports this module without ``records``
    from selftaught.records import RemoteSpec

__all__ = [
    "ERROR_CLASSES",
    "Request",
    "call_message",
    "error_class",
    "make_proxy",
    "reply_error",
    "reply_value",
    "spec_message",
    "unpack_call",
    "unpack_reply",
]

Request = Callable[[str, str, tuple[Any, ...], dict[str, Any]], Any]
"""How a proxy method reaches the broker: ``request(remote, method, args, kwargs)`` -> the answer."""


def _error_classes() -> dict[str, type[SelftaughtError]]:
    """Every error class ``selftaught.errors`` exports, by name."""
    classes: dict[str, type[SelftaughtError]] = {}
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, SelftaughtError):
            classes[name] = value
    return classes


ERROR_CLASSES: dict[str, type[SelftaughtError]] = _error_classes()
"""The error classes sandboxed code can receive (and catch by name: its module namespace holds them)."""


def error_class(name: str) -> type[SelftaughtError]:
    """The class of ``selftaught.errors`` called ``name``; ``SelftaughtError`` for any other name."""
    return ERROR_CLASSES.get(name, SelftaughtError)


# --- the sandbox's side ------------------------------------------------------------------------


def make_proxy(spec: dict[str, Any], request: Request) -> Any:
    """The object sandboxed code gets for a remote: its attributes copied, each method a call to the broker."""
    name = str(spec["name"])
    namespace: dict[str, Any] = {}
    for method in spec.get("methods", []):
        namespace[str(method)] = _remote_method(request, name, str(method))
    proxy = type(name if name.isidentifier() else "Remote", (), namespace)()
    for key, value in dict(spec.get("attributes", {})).items():
        setattr(proxy, key, value)
    return proxy


def _remote_method(request: Request, remote: str, method: str) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return request(remote, method, args, kwargs)

    call.__name__ = method
    return call


def call_message(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The message asking the broker for ``remote.method(*args, **kwargs)`` (arguments already plain data)."""
    return {"t": "call", "remote": remote, "method": method, "args": args, "kwargs": kwargs}


def unpack_reply(reply: Any) -> Any:
    """The broker's answer: its value, or its error raised as the class of ``selftaught.errors`` it names."""
    if not isinstance(reply, dict):
        raise SelftaughtError("malformed reply from the broker")
    if reply.get("ok") is True:
        return reply.get("value")
    raise error_class(str(reply.get("error_class", "")))(str(reply.get("message", "")))


# --- the broker's side -------------------------------------------------------------------------


def spec_message(spec: RemoteSpec) -> dict[str, Any]:
    """A remote as the job message carries it."""
    return {"name": spec.name, "attributes": dict(spec.attributes), "methods": list(spec.methods)}


def unpack_call(message: dict[str, Any]) -> tuple[str, str, list[Any], dict[str, Any]] | None:
    """``(remote, method, args, kwargs)`` of a call message; None when it is malformed."""
    remote, method = message.get("remote"), message.get("method")
    args, kwargs = message.get("args", []), message.get("kwargs", {})
    if isinstance(remote, str) and isinstance(method, str) and isinstance(args, list) and isinstance(kwargs, dict):
        return remote, method, args, kwargs
    return None


def reply_value(value: Any) -> dict[str, Any]:
    """The answer carrying a method's return value."""
    return {"ok": True, "value": value}


def reply_error(error: SelftaughtError) -> dict[str, Any]:
    """The answer that makes the sandboxed call raise ``error`` (as its nearest class of ``selftaught.errors``)."""
    name = next(cls.__name__ for cls in type(error).__mro__
                if ERROR_CLASSES.get(cls.__name__) is cls or cls is SelftaughtError)
    return {"ok": False, "error_class": name, "message": str(error)}
