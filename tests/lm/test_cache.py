"""CachingLM and ReplayLM over the ResponseCache protocol."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from selftaught.errors import LMRequestError
from selftaught.lm import CachingLM, InMemoryCache, ReplayLM, ResponseCache, ScriptedLM, cache_key
from selftaught.records import LMRequest


def numbered() -> ScriptedLM:
    return ScriptedLM([f"text {i}" for i in range(100)], cycle=False, name="openai:m")


def test_keys_cover_every_field_but_n() -> None:
    base = LMRequest(system="s", user="u", n=1, temperature=0.7, max_tokens=10, tag="t")
    key = cache_key("m", base, 0)
    assert key == cache_key("m", LMRequest(system="s", user="u", n=6, temperature=0.7, max_tokens=10, tag="t"), 0)
    variants = [
        cache_key("other", base, 0),
        cache_key("m", base, 1),
        cache_key("m", LMRequest(system="S", user="u", temperature=0.7, max_tokens=10, tag="t"), 0),
        cache_key("m", LMRequest(system="s", user="U", temperature=0.7, max_tokens=10, tag="t"), 0),
        cache_key("m", LMRequest(system="s", user="u", temperature=0.8, max_tokens=10, tag="t"), 0),
        cache_key("m", LMRequest(system="s", user="u", temperature=0.7, max_tokens=11, tag="t"), 0),
        cache_key("m", LMRequest(system="s", user="u", temperature=0.7, max_tokens=10, tag="t2"), 0),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_second_call_is_a_hit_and_more_samples_only_fetch_the_rest() -> None:
    cache = InMemoryCache()
    assert isinstance(cache, ResponseCache)
    inner = numbered()
    lm = CachingLM(inner, cache)
    first = lm.complete(LMRequest(system="", user="q", n=2, tag="a"))
    again = lm.complete(LMRequest(system="", user="q", n=2, tag="a"))
    assert first.texts == again.texts == ("text 0", "text 1")
    assert not first.cached and again.cached and again.prompt_tokens == 0
    more = lm.complete(LMRequest(system="", user="q", n=3, tag="a"))
    assert more.texts == ("text 0", "text 1", "text 2") and not more.cached
    assert [r.n for r in inner.history] == [2, 1]
    other_tag = lm.complete(LMRequest(system="", user="q", n=1, tag="b"))
    assert other_tag.texts == ("text 3",)
    meta = cache.meta(cache_key("openai:m", LMRequest(system="", user="q", tag="a"), 1))
    assert meta is not None and meta["index"] == 1 and meta["tag"] == "a" and meta["user"] == "q"


def test_per_sample_token_split_adds_up() -> None:
    cache = InMemoryCache()
    lm = CachingLM(ScriptedLM(["one two three", "four"]), cache)
    response = lm.complete(LMRequest(system="", user="a b", n=2))
    metas = [cache.meta(cache_key("scripted", LMRequest(system="", user="a b"), k)) for k in range(2)]
    assert sum(m["completion_tokens"] for m in metas if m) == response.completion_tokens == 4
    assert sum(m["prompt_tokens"] for m in metas if m) == response.prompt_tokens == 2


def test_replay_gives_the_recorded_run_back_even_concurrently() -> None:
    cache = InMemoryCache()
    recorder = CachingLM(numbered(), cache)
    requests = [LMRequest(system="", user="q", n=3, tag=f"t{i}") for i in range(6)]
    recorded = [recorder.complete(r).texts for r in requests]
    replay = ReplayLM(cache, "openai:m")
    with ThreadPoolExecutor(4) as pool:
        replayed = list(pool.map(lambda r: replay.complete(r).texts, reversed(requests)))
    assert replayed[::-1] == recorded
    assert replay.complete(requests[0]).cached


def test_replay_miss_is_a_request_error() -> None:
    replay = ReplayLM(InMemoryCache(), "openai:m")
    with pytest.raises(LMRequestError, match="not in the recorded run: openai:m call t9 sample 0"):
        replay.complete(LMRequest(system="", user="q", tag="t9"))
