"""Price table and the run-level meter."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from selftaught.errors import ConfigError, LMUnavailable, RunCapExceeded
from selftaught.lm import Caps, Meter, MeteredLM, Price, PriceTable, ScriptedLM
from selftaught.records import LMRequest, LMResponse


def test_prices_by_longest_prefix_and_free_backends() -> None:
    table = PriceTable()

    def figures(model: str) -> tuple[float, float] | None:
        price = table.price(model)
        return None if price is None else (price.input_usd_per_mtok, price.output_usd_per_mtok)

    assert figures("openai:gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert figures("openai:gpt-4o-2024-08-06") == (2.50, 10.00)
    assert figures("anthropic:claude-haiku-4-5") == (1.00, 5.00)
    assert table.price("local") == table.price("replay:run-1") == Price(0.0, 0.0)
    assert table.price("openai:my-vllm-model") is None
    assert table.cost_usd("openai:gpt-4o-mini", 1_000_000, 2_000_000) == pytest.approx(0.15 + 1.20)


def test_every_built_in_price_says_when_and_where_from() -> None:
    from selftaught.lm.pricing import DEFAULT_PRICES

    assert all(price.as_of and price.source for price in DEFAULT_PRICES.values())


def test_prices_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[prices."my-vllm-model"]\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 2.5\n')
    table = PriceTable().with_toml(path)
    assert table.price("openai:my-vllm-model") == Price(1.0, 2.5, source=f"from {path}")
    assert table.price("openai:gpt-4o") == PriceTable().price("openai:gpt-4o")
    path.write_text('[prices."gpt-4o"]\ninput_usd_per_mtok = 2\noutput_usd_per_mtok = 8\n'
                    'cached_input_usd_per_mtok = 0.5\nas_of = 2026-01-15\nsource = "pricing page"\n')
    refreshed = PriceTable().with_toml(path).price("openai:gpt-4o-2024-08-06")
    assert refreshed == Price(2.0, 8.0, 0.5, None, "2026-01-15", "pricing page")
    assert "pricing page, as of 2026-01-15" in refreshed.describe()
    path.write_text('[prices."x"]\ninput_usd_per_mtok = -1\noutput_usd_per_mtok = 2\n')
    with pytest.raises(ConfigError, match="non-negative"):
        PriceTable().with_toml(path)
    with pytest.raises(ConfigError, match="cannot read price file"):
        PriceTable().with_toml(tmp_path / "missing.toml")


class FixedLM:
    """Reports fixed token counts, like a priced remote model."""

    def __init__(self, name: str = "openai:gpt-4o-mini", prompt: int = 1000, completion: int = 500) -> None:
        self.name = name
        self.prompt = prompt
        self.completion = completion

    def complete(self, request: LMRequest) -> LMResponse:
        return LMResponse(
            texts=("x",) * request.n, model=self.name, prompt_tokens=self.prompt, completion_tokens=self.completion
        )


def test_meter_books_calls_tokens_and_dollars() -> None:
    meter = Meter()
    lm = MeteredLM(FixedLM(), meter)
    response = lm.complete(LMRequest(system="", user="q", n=2))
    assert response.cost_usd == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)
    lm.complete(LMRequest(system="", user="q"))
    spent = meter.spent()
    assert (spent.calls, spent.prompt_tokens, spent.completion_tokens) == (2, 2000, 1000)
    assert spent.cost_usd == pytest.approx(2 * response.cost_usd)


def test_call_cap_counts_cached_calls_but_they_cost_nothing() -> None:
    class Cached(FixedLM):
        def complete(self, request: LMRequest) -> LMResponse:
            return LMResponse(texts=("x",), model=self.name, cached=True)

    meter = Meter(Caps(max_lm_calls=2))
    lm = MeteredLM(Cached(), meter)
    lm.complete(LMRequest(system="", user="q"))
    lm.complete(LMRequest(system="", user="q"))
    with pytest.raises(RunCapExceeded, match="call cap"):
        lm.complete(LMRequest(system="", user="q"))
    spent = meter.spent()
    assert (spent.calls, spent.cached_calls, spent.tokens, spent.cost_usd) == (2, 2, 0, 0.0)


def test_token_cap_refuses_a_call_whose_worst_case_does_not_fit() -> None:
    inner = ScriptedLM(["a"])
    lm = MeteredLM(inner, Meter(Caps(max_tokens=1000)))
    lm.complete(LMRequest(system="", user="q", max_tokens=500))
    with pytest.raises(RunCapExceeded, match="token cap 1000 would be exceeded"):
        lm.complete(LMRequest(system="", user="q", n=2, max_tokens=500))
    assert len(inner.history) == 1  # the refused call was never sent


def test_cost_cap_and_unpriced_models() -> None:
    lm = MeteredLM(FixedLM(prompt=0, completion=0), Meter(Caps(max_cost_usd=0.001)))
    # worst case of 2000 completion tokens at $0.60/M = $0.0012 > $0.001
    with pytest.raises(RunCapExceeded, match="cost cap"):
        lm.complete(LMRequest(system="", user="q", max_tokens=2000))
    lm.complete(LMRequest(system="", user="q", max_tokens=1000))
    unpriced = MeteredLM(FixedLM(name="openai:mystery"), Meter(Caps(max_cost_usd=1.0)))
    with pytest.raises(ConfigError, match="no price known for openai:mystery"):
        unpriced.complete(LMRequest(system="", user="q"))
    free = MeteredLM(FixedLM(name="openai:mystery"), Meter())  # no dollar cap: unpriced is fine
    assert free.complete(LMRequest(system="", user="q")).cost_usd == 0.0


def test_failed_calls_release_their_reservation() -> None:
    def fail(request: LMRequest, index: int) -> str:
        raise LMUnavailable("down")

    meter = Meter(Caps(max_tokens=600))
    lm = MeteredLM(ScriptedLM(fail), meter)
    for _ in range(3):
        with pytest.raises(LMUnavailable):
            lm.complete(LMRequest(system="", user="q", max_tokens=500))
    assert meter.spent().calls == 0


def test_concurrent_calls_never_overshoot_the_cap() -> None:
    release = threading.Event()

    def slow(request: LMRequest, index: int) -> str:
        release.wait(30)  # admitted calls hold their reservations until every call has been tried
        return "x"

    meter = Meter(Caps(max_tokens=4 * 101))  # worst case of one call: 1 prompt + 100 completion tokens
    lm = MeteredLM(ScriptedLM(slow), meter)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(lm.complete, LMRequest(system="", user="q", max_tokens=100)) for _ in range(6)]
        deadline = time.monotonic() + 30
        while sum(f.done() for f in futures) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
    refused = [f for f in futures if isinstance(f.exception(), RunCapExceeded)]
    assert len(refused) == 2
    assert meter.spent().calls == 4
