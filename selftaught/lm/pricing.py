"""Dollar prices of LM tokens: a built-in table users extend from a TOML file.

Prices are USD per million tokens, looked up by model id with the longest matching prefix (so
``gpt-4o-2024-08-06`` gets ``gpt-4o``'s price and ``gpt-4o-mini`` its own). A model *name* as
backends report it (``openai:gpt-4o-mini``) is split at the first colon; the ``local``, ``manual``,
``replay`` and ``scripted`` backends cost nothing. An unknown model has no price (``None``): the
caller decides whether that is acceptable (a dollar cap makes it an error).

The TOML file holds one table per model id::

    [prices."my-finetune"]
    input_usd_per_mtok = 1.5
    output_usd_per_mtok = 6.0

The built-in figures are list prices at the time of writing (standard tier, no batch or cache
discounts) and go stale: check them against the providers' pages for anything that matters.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from selftaught.errors import ConfigError

__all__ = ["DEFAULT_PRICES", "FREE_BACKENDS", "Price", "PriceTable", "parse_prices"]


@dataclass(frozen=True)
class Price:
    """USD per one million input (prompt) and output (completion) tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The dollar cost of that many tokens."""
        return (prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok) / 1e6


FREE_BACKENDS = frozenset({"local", "manual", "replay", "scripted"})

DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        # OpenAI
        "gpt-3.5-turbo": Price(0.50, 1.50),
        "gpt-4": Price(30.00, 60.00),
        "gpt-4-turbo": Price(10.00, 30.00),
        "gpt-4o": Price(2.50, 10.00),
        "gpt-4o-mini": Price(0.15, 0.60),
        "gpt-4.1": Price(2.00, 8.00),
        "gpt-4.1-mini": Price(0.40, 1.60),
        "gpt-4.1-nano": Price(0.10, 0.40),
        "gpt-5": Price(1.25, 10.00),
        "gpt-5-mini": Price(0.25, 2.00),
        "gpt-5-nano": Price(0.05, 0.40),
        "o1": Price(15.00, 60.00),
        "o1-mini": Price(1.10, 4.40),
        "o3": Price(2.00, 8.00),
        "o3-mini": Price(1.10, 4.40),
        "o4-mini": Price(1.10, 4.40),
        # Anthropic
        "claude-3-haiku": Price(0.25, 1.25),
        "claude-3-5-haiku": Price(0.80, 4.00),
        "claude-haiku-4-5": Price(1.00, 5.00),
        "claude-3-5-sonnet": Price(3.00, 15.00),
        "claude-3-7-sonnet": Price(3.00, 15.00),
        "claude-sonnet-4": Price(3.00, 15.00),
        "claude-3-opus": Price(15.00, 75.00),
        "claude-opus-4": Price(15.00, 75.00),
        "claude-opus-4-5": Price(5.00, 25.00),
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

    def cost_usd(self, model_name: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The dollar cost of a call, or ``None`` when the model has no known price."""
        price = self.price(model_name)
        return price.cost_usd(prompt_tokens, completion_tokens) if price is not None else None


def parse_prices(data: Mapping[str, object], where: str) -> dict[str, Price]:
    """The ``[prices."ID"]`` tables of parsed TOML as ``Price`` records."""
    unknown = sorted(set(data) - {"prices"})
    if unknown:
        raise ConfigError(f'unknown key in {where}: {", ".join(unknown)} (expected only [prices."MODEL"] tables)')
    table = data.get("prices", {})
    if not isinstance(table, dict):
        raise ConfigError(f"prices in {where} must be a table")
    prices: dict[str, Price] = {}
    for model_id, entry in table.items():
        if not isinstance(entry, dict) or set(entry) != {"input_usd_per_mtok", "output_usd_per_mtok"}:
            raise ConfigError(
                f'prices."{model_id}" in {where} needs exactly input_usd_per_mtok and output_usd_per_mtok'
            )
        values = [entry["input_usd_per_mtok"], entry["output_usd_per_mtok"]]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values):
            raise ConfigError(f'prices."{model_id}" in {where} must be non-negative numbers')
        prices[str(model_id)] = Price(float(values[0]), float(values[1]))
    return prices
