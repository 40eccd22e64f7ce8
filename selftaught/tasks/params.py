"""Task specs with parameters: ``lpn``, ``lpn:preset=hard``, ``lpn:bits=24,noise=0.1``.

A spec is a task name (or a task file path), optionally followed by ``:`` and comma-separated
``key=value`` pairs. ``preset=NAME`` picks a named parameter set (``paper``, the default, is the
paper's setting); every other key overrides one parameter of it. Each built-in task declares its
parameters as ``Param`` rows and its presets as plain dicts; ``resolve`` checks a spec against
them and raises one ``TaskError`` naming the bad key or value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from selftaught.errors import TaskError

__all__ = ["Param", "Params", "canonical_spec", "parse_spec", "resolve", "split_specs"]

Params = dict[str, int | float]
DEFAULT_PRESET = "paper"


@dataclass(frozen=True)
class Param:
    """One task parameter: its name, type (from the default), bounds and meaning."""

    name: str
    default: int | float
    help: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False  # True: the value must be strictly above ``low``

    def parse(self, task: str, text: str) -> int | float:
        """``text`` as this parameter's type, within its bounds; else a ``TaskError`` naming it."""
        where = f"task {task!r}: {self.name}={text!r}"
        if isinstance(self.default, int):
            try:
                value: int | float = int(text)
            except ValueError:
                raise TaskError(f"{where} is not an integer ({self.help})") from None
        else:
            try:
                value = float(text)
            except ValueError:
                raise TaskError(f"{where} is not a number ({self.help})") from None
        self.check(task, value)
        return value

    def check(self, task: str, value: int | float) -> None:
        too_low = value <= self.low if self.low_open else value < self.low
        if not math.isfinite(value) or too_low or value > self.high:
            low = "(" if self.low_open else "["
            raise TaskError(f"task {task!r}: {self.name}={value!r} is out of range {low}{self.low:g}, "
                            f"{self.high:g}] ({self.help})")


def _is_path(name: str) -> bool:
    return name.endswith(".py") or "/" in name or "\\" in name


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``NAME[:key=value,...]`` into the name and the raw values (a path keeps any colon)."""
    spec = spec.strip()
    if spec.endswith(".py"):  # a task file path, whatever colons it holds
        return spec, {}
    name, sep, rest = spec.rpartition(":") if _is_path(spec) else spec.partition(":")
    if not sep or not name:
        return spec, {}
    values: dict[str, str] = {}
    for item in rest.split(","):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise TaskError(f"task spec {spec!r}: {item.strip()!r} is not key=value")
        if key in values:
            raise TaskError(f"task spec {spec!r}: {key} is given twice")
        values[key] = value
    return name.strip(), values


def split_specs(text: str) -> list[str]:
    """Several specs in one string: ``lpn:bits=24,noise=0.1,parity`` or ``lpn:bits=24;parity``.

    Separated by ``;`` if there is one, else by commas, where a ``key=value`` item after a comma
    belongs to the spec before it.
    """
    if ";" in text:
        return [item.strip() for item in text.split(";") if item.strip()]
    specs: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if specs and "=" in item and ":" not in item and ":" in specs[-1]:
            specs[-1] += "," + item
        else:
            specs.append(item)
    return specs


def resolve(task: str, schema: Sequence[Param], presets: Mapping[str, Mapping[str, int | float]],
            values: Mapping[str, str]) -> tuple[str, Params]:
    """The preset name and the full parameter set a spec's ``values`` select."""
    known = {param.name: param for param in schema}
    preset = values.get("preset", DEFAULT_PRESET)
    if preset not in presets:
        raise TaskError(f"task {task!r}: no preset {preset!r}; presets: {', '.join(presets)}")
    params: Params = {param.name: param.default for param in schema}
    params.update(presets[preset])
    for key, text in values.items():
        if key == "preset":
            continue
        if key not in known:
            names = ", ".join(["preset", *known])
            raise TaskError(f"task {task!r} has no parameter {key!r}; its parameters: {names}")
        params[key] = known[key].parse(task, text)
    return preset, params


def canonical_spec(name: str, preset: str, params: Mapping[str, int | float],
                   presets: Mapping[str, Mapping[str, int | float]], schema: Sequence[Param]) -> str:
    """The shortest spec naming the same parameters: the preset plus what differs from it."""
    base: Params = {param.name: param.default for param in schema}
    base.update(presets[preset])
    changed = [f"{key}={params[key]!r}" for key in sorted(params) if params[key] != base.get(key)]
    head = [] if preset == DEFAULT_PRESET else [f"preset={preset}"]
    items = head + changed
    return f"{name}:{','.join(items)}" if items else name
