"""Dollar prices of LM tokens: a built-in table users refresh or extend from a TOML file.

Prices are USD per million tokens, looked up by model id with the longest matching prefix (so
``gpt-4o-2024-08-06`` gets ``gpt-4o``'s price and ``gpt-4o-mini`` its own). A model *name* as
backends report it (``openai:gpt-4o-mini``) is split at the first colon; the ``local``, ``manual``,
``replay`` and ``scripted`` backends cost nothing. An unknown model has no price (``None``): the
caller decides whether that is acceptable (a dollar cap makes it an error).

Prompt tokens read from a provider's prompt cache cost ``cached_input_usd_per_mtok`` (OpenAI: a
half to a tenth of the input price; Anthropic: a tenth); prompt tokens written to Anthropic's cache
cost ``cache_write_usd_per_mtok`` (1.25 times the input price). Each entry says when its figures
were taken and from where (``as_of``, ``source``): every dollar figure computed from the table is an
estimate, and the built-in figures go stale. A TOML file replaces or adds entries::

    [prices."my-finetune"]
    input_usd_per_mtok = 1.5
    output_usd_per_mtok = 6.0
    cached_input_usd_per_mtok = 0.75     # optional (default: the input price)
    cache_write_usd_per_mtok = 1.5       # optional (default: the input price)
    as_of = "2026-01-15"                 # optional
    source = "our contract"              # optional
"""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from selftaught.errors import ConfigError

__all__ = ["DEFAULT_PRICES", "FREE_BACKENDS", "Price", "PriceTable", "parse_prices"]


@dataclass(frozen=True)
class Price:
    """USD per one million input (prompt) and output (completion) tokens, and where that comes from.

    ``cached_input_usd_per_mtok`` / ``cache_write_usd_per_mtok`` price prompt tokens read from /
    written to a provider's prompt cache (``None``: the input price).
    """

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float | None = None
    cache_write_usd_per_mtok: float | None = None
    as_of: str = ""
    source: str = ""

    def cost_usd(
        self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0, cache_write_tokens: int = 0
    ) -> float:
        """The dollar cost of that many tokens (``prompt_tokens`` includes the cached and written ones)."""
        cached_price = self.input_usd_per_mtok if self.cached_input_usd_per_mtok is None \
            else self.cached_input_usd_per_mtok
        write_price = self.input_usd_per_mtok if self.cache_write_usd_per_mtok is None \
            else self.cache_write_usd_per_mtok
        plain = max(prompt_tokens - cached_prompt_tokens - cache_write_tokens, 0)
        return (plain * self.input_usd_per_mtok + cached_prompt_tokens * cached_price
                + cache_write_tokens * write_price + completion_tokens * self.output_usd_per_mtok) / 1e6

    def describe(self) -> str:
        """One line: the prices and where they come from."""
        cached = "" if self.cached_input_usd_per_mtok is None else f", cached input ${self.cached_input_usd_per_mtok:g}"
        note = ", ".join(part for part in (self.source, f"as of {self.as_of}" if self.as_of else "") if part)
        return (f"${self.input_usd_per_mtok:g} in{cached}, ${self.output_usd_per_mtok:g} out per million tokens"
                + (f" ({note})" if note else ""))


FREE_BACKENDS = frozenset({"local", "manual", "replay", "scripted"})

_OPENAI = "OpenAI API pricing page, standard tier, as remembered; not re-checked"
_ANTHROPIC = "Anthropic pricing page, as remembered; cache write = 1.25 x input (5-minute cache); not re-checked"
_AS_OF = "2025-08"


def _openai(inp: float, out: float, cached: float | None = None) -> Price:
    return Price(inp, out, cached, None, _AS_OF, _OPENAI)


def _anthropic(inp: float, out: float) -> Price:
    return Price(inp, out, round(inp * 0.1, 6), round(inp * 1.25, 6), _AS_OF, _ANTHROPIC)


DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        # OpenAI
        "gpt-3.5-turbo": _openai(0.50, 1.50),
        "gpt-4": _openai(30.00, 60.00),
        "gpt-4-turbo": _openai(10.00, 30.00),
        "gpt-4o": _openai(2.50, 10.00, 1.25),
        "gpt-4o-mini": _openai(0.15, 0.60, 0.075),
        "gpt-4.1": _openai(2.00, 8.00, 0.50),
        "gpt-4.1-mini": _openai(0.40, 1.60, 0.10),
        "gpt-4.1-nano": _openai(0.10, 0.40, 0.025),
        "gpt-5": _openai(1.25, 10.00, 0.125),
        "gpt-5-mini": _openai(0.25, 2.00, 0.025),
        "gpt-5-nano": _openai(0.05, 0.40, 0.005),
        "o1": _openai(15.00, 60.00, 7.50),
        "o1-mini": _openai(1.10, 4.40, 0.55),
        "o3": _openai(2.00, 8.00, 0.50),
        "o3-mini": _openai(1.10, 4.40, 0.55),
        "o4-mini": _openai(1.10, 4.40, 0.275),
        # Anthropic
        "claude-3-haiku": _anthropic(0.25, 1.25),
        "claude-3-5-haiku": _anthropic(0.80, 4.00),
        "claude-haiku-4-5": _anthropic(1.00, 5.00),
        "claude-3-5-sonnet": _anthropic(3.00, 15.00),
        "claude-3-7-sonnet": _anthropic(3.00, 15.00),
        "claude-sonnet-4": _anthropic(3.00, 15.00),
        "claude-3-opus": _anthropic(15.00, 75.00),
        "claude-opus-4": _anthropic(15.00, 75.00),
        "claude-opus-4-5": _anthropic(5.00, 25.00),
    }
)


class PriceTable:
    """Model id prefix -> ``Price``; immutable (``with_prices`` returns a new table)."""

    def __init__(self, prices: Mapping[str, Price] = DEFAULT_PRICES) -> None:
        self._prices = dict(prices)

    def with_prices(self, extra: Mapping[str, Price]) -> PriceTable:
        """A new table with ``extra`` added (replacing entries of the same id)."""
        return PriceTable({**self._prices, **extra})

    def with_toml(self, path: Path) -> PriceTable:
        """A new table with the prices of a TOML file added (format in the module docstring)."""
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read price file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"price file {path} is not valid TOML: {exc}") from exc
        return self.with_prices(parse_prices(data, str(path)))

    def price(self, model_name: str) -> Price | None:
        """The price of a model name (``backend:model`` or a bare id); free backends cost 0."""
        backend, colon, model = model_name.partition(":")
        if backend in FREE_BACKENDS:
            return Price(0.0, 0.0)
        model_id = model if colon else backend
        best = ""
        for prefix in self._prices:
            if model_id.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self._prices[best] if best else None

    def cost_usd(
        self, model_name: str, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float | None:
        """The dollar cost of a call, or ``None`` when the model has no known price."""
        price = self.price(model_name)
        if price is None:
            return None
        return price.cost_usd(prompt_tokens, completion_tokens, cached_prompt_tokens, cache_write_tokens)


_REQUIRED = ("input_usd_per_mtok", "output_usd_per_mtok")
_OPTIONAL_NUMBERS = ("cached_input_usd_per_mtok", "cache_write_usd_per_mtok")
_OPTIONAL_TEXTS = ("as_of", "source")


def parse_prices(data: Mapping[str, object], where: str) -> dict[str, Price]:
    """The ``[prices."ID"]`` tables of parsed TOML as ``Price`` records."""
    unknown = sorted(set(data) - {"prices"})
    if unknown:
        raise ConfigError(f'unknown key in {where}: {", ".join(unknown)} (expected only [prices."MODEL"] tables)')
    table = data.get("prices", {})
    if not isinstance(table, dict):
        raise ConfigError(f"prices in {where} must be a table")
    prices: dict[str, Price] = {}
    allowed = set(_REQUIRED + _OPTIONAL_NUMBERS + _OPTIONAL_TEXTS)
    for model_id, entry in table.items():
        if not isinstance(entry, dict) or not set(_REQUIRED) <= set(entry) or not set(entry) <= allowed:
            raise ConfigError(
                f'prices."{model_id}" in {where} needs input_usd_per_mtok and output_usd_per_mtok '
                f"(optional: {', '.join(_OPTIONAL_NUMBERS + _OPTIONAL_TEXTS)})"
            )
        numbers = [entry.get(name) for name in _REQUIRED + _OPTIONAL_NUMBERS]
        if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v >= 0) for v in numbers):
            raise ConfigError(f'prices."{model_id}" in {where} must be non-negative numbers')
        texts = [entry.get(name, "") for name in _OPTIONAL_TEXTS]
        if not all(isinstance(text, str | datetime.date) for text in texts):
            raise ConfigError(f'prices."{model_id}" in {where}: as_of and source must be strings')
        as_of, source = (str(text) for text in texts)
        cached, write = (None if v is None else float(v) for v in numbers[2:])
        prices[str(model_id)] = Price(float(numbers[0] or 0), float(numbers[1] or 0), cached, write,
                                      as_of, source or f"from {where}")
    return prices
