"""The improver's two remotes, ``utility`` and ``language_model``: their specs, signatures and checks.

An improver job calls ``improve_algorithm(initial_solution, utility, language_model)`` with the
paper's API (``improver_remotes`` builds both specs from ``SIGNATURES``, so what the sandbox
exposes and what the broker accepts cannot drift apart)::

    utility(solution)                                        utility.str, utility.budget
    language_model.batch_prompt(expertise, messages, temperature=0.7)
    language_model.prompt(expertise, message, n_responses=1, temperature=0.7)
                                                             language_model.budget,
                                                             language_model.max_responses_per_call

``parse_call`` binds a call's arguments like Python would and checks their types and ranges,
returning a ``UtilityCall`` or an ``LMCall``; anything wrong is a ``ProxyError`` (raised inside
the improver). It allocates nothing in proportion to the arguments (``n_responses=10**30`` is a
number here, not a list), so the broker can check the budget before any work. Budgets, sizes of
what is stored and the work itself are the broker's (``broker.broker``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from selftaught.config import Budgets
from selftaught.errors import ProxyError
from selftaught.records import RemoteSpec

__all__ = [
    "IMPROVER_ENTRY",
    "SIGNATURES",
    "LMCall",
    "Signature",
    "UtilityCall",
    "improver_call",
    "improver_remotes",
    "parse_call",
]

IMPROVER_ENTRY = "improve_algorithm"
"""The function an improver's source must define."""

DEFAULT_TEMPERATURE = 0.7


@dataclass(frozen=True)
class Signature:
    """A remote method's parameters, in order, and the defaults of the optional ones."""

    where: str
    names: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)

    def bind(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Bind positional and keyword arguments to ``names`` like a Python call would."""
        if len(args) > len(self.names):
            raise ProxyError(f"{self.where} takes {len(self.names)} arguments, got {len(args)}")
        bound = dict(self.defaults)
        bound.update(zip(self.names, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.names:
                raise ProxyError(f"{self.where} got an unexpected argument {key!r}")
            bound[key] = value
        missing = [name for name in self.names if name not in bound]
        if missing:
            raise ProxyError(f"{self.where} is missing {', '.join(missing)}")
        return bound


SIGNATURES: dict[tuple[str, str], Signature] = {
    ("utility", "__call__"): Signature("utility", ("solution",)),
    ("language_model", "batch_prompt"): Signature(
        "batch_prompt", ("expertise", "messages", "temperature"), {"temperature": DEFAULT_TEMPERATURE}),
    ("language_model", "prompt"): Signature(
        "prompt", ("expertise", "message", "n_responses", "temperature"),
        {"n_responses": 1, "temperature": DEFAULT_TEMPERATURE}),
}
"""Every method an improver can call, by ``(remote, method)``."""


def _methods(remote: str) -> tuple[str, ...]:
    return tuple(method for name, method in SIGNATURES if name == remote)


def improver_remotes(description: str, budgets: Budgets) -> tuple[RemoteSpec, ...]:
    """The specs of ``utility`` (described by ``description``) and ``language_model`` for one improver run.

    The attributes are copies for the improver to read; the budgets that count are the broker's.
    """
    return (
        RemoteSpec("utility", {"str": description, "budget": budgets.utility_calls}, _methods("utility")),
        RemoteSpec("language_model", {"budget": budgets.lm_calls,
                                      "max_responses_per_call": budgets.responses_per_call},
                   _methods("language_model")),
    )


def improver_call(initial_solution: str) -> tuple[Any, ...]:
    """The arguments of ``improve_algorithm``: the solution, then the two remotes."""
    return (initial_solution, {"$remote": "utility"}, {"$remote": "language_model"})


@dataclass(frozen=True)
class UtilityCall:
    """``utility(solution)``; ``solution`` is whatever the improver passed (a non-string scores 0)."""

    solution: Any


@dataclass(frozen=True)
class LMCall:
    """``batch_prompt`` or ``prompt``, checked: ``messages`` each asked ``repeat`` times, in order."""

    expertise: str
    messages: tuple[str, ...]
    temperature: float
    repeat: int = 1

    @property
    def responses(self) -> int:
        """How many answers the call asks for (computed, not allocated)."""
        return len(self.messages) * self.repeat

    def expanded(self) -> list[str]:
        """One message per answer; call only once ``responses`` is known to be within the budget."""
        return [message for message in self.messages for _ in range(self.repeat)]


def parse_call(remote: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> UtilityCall | LMCall:
    """The checked call, or ``ProxyError`` saying what is wrong with it."""
    signature = SIGNATURES.get((remote, method))
    if signature is None:
        raise ProxyError(f"{remote} has no method {method}")
    bound = signature.bind(args, kwargs)
    if remote == "utility":
        return UtilityCall(bound["solution"])
    if method == "batch_prompt":
        messages = bound["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
            raise ProxyError("batch_prompt: messages must be a list of strings")
        return LMCall(_expertise(bound["expertise"]), tuple(messages), _temperature(bound["temperature"]))
    n = bound["n_responses"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ProxyError("prompt: n_responses must be a positive integer")
    if not isinstance(bound["message"], str):
        raise ProxyError("prompt: message must be a string")
    return LMCall(_expertise(bound["expertise"]), (bound["message"],), _temperature(bound["temperature"]), n)


def _expertise(value: Any) -> str:
    if not isinstance(value, str):
        raise ProxyError("expertise must be a string")
    return value


def _temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 2.0 \
            or not math.isfinite(value):
        raise ProxyError("temperature must be a number between 0 and 2")
    return float(value)
