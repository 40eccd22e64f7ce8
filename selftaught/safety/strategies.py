"""Strategy tags of an improver: which search ideas its code uses (the paper's strategy survey).

``code_tags(source)`` reads tags off the code with documented heuristics; ``confirm_tags`` asks a
language model yes/no per candidate tag and keeps the confirmed ones (stored with origin ``lm``).

Heuristics (over *identifiers* — names, attributes, parameters, function names, split into words
— and over code structure; string literals count only for ``prompt_hints``, because a prompt that
merely *mentions* "genetic algorithm" is a hint, not the strategy):

* ``beam_search``          a word ``beam``; or inside a loop, ``heapq.nlargest`` or a sorted list
  cut to its top k (``sorted(...)[:k]``).
* ``genetic_algorithm``    ``genetic``, ``crossover``, ``offspring``, ``chromosome``; or
  ``population`` together with ``mutate``/``mutation``.
* ``simulated_annealing``  ``anneal``/``annealing``/``cooling``; or ``math.exp`` next to a word
  ``temperature``/``temp`` and a ``random`` draw.
* ``bandit``               ``bandit``, ``ucb``, ``thompson``, ``arm``/``arms`` with ``pulls``/
  ``counts``; or ``sqrt(log(...)/...)`` (a UCB bonus).
* ``epsilon_greedy``       ``epsilon``/``eps`` compared with a ``random()`` draw.
* ``decomposition``        ``decompose``, ``decomposition``, ``subproblem``, ``part``+``by``; splitting
  the solution on ``def``/blank lines; ``ast.parse`` of the solution.
* ``temperature_schedule`` a temperature that changes: augmented assignment to, or arithmetic
  assigned to, a name with ``temp`` in it; a ``temperature=`` argument that is not a constant.
* ``local_search``         ``hill``+``climb``, ``local``+``search``, ``neighbor``/``neighbour``,
  ``perturb``, ``tweak``.
* ``iterative_refinement`` an LM call inside a loop that also keeps a best-so-far (``if score >
  best...``) — the greedy iterative improver.
* ``self_consistency``     ``vote``/``voting``/``majority``/``ensemble``/``consensus``, or
  ``collections.Counter`` over answers.
* ``prompt_hints``         a string literal containing ``hint``/``tip``/``advice``, or a list of
  two or more strings bound to a name with ``hint``/``idea``/``strateg``/``tip``/``suggest``.
* ``utility_cache``        ``cache``/``memo``/``seen``/``dedup``/``unique``/``scored`` names,
  ``functools.lru_cache``/``cache``, ``dict.fromkeys``, ``set(...)`` of candidates.
* ``self_reflection``      ``critique``/``reflect``/``reflection``/``feedback``/``review``.
* ``best_of_n``            ``max(..., key=utility)`` (the seed's selection).

Left out: understanding what the code does; tags are hints for a survey, checked by hand or by
``confirm_tags``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from selftaught.errors import LMError
from selftaught.lm.base import LanguageModel
from selftaught.records import LMRequest

__all__ = ["STRATEGY_TAGS", "code_tags", "confirm_tags"]

STRATEGY_TAGS: dict[str, str] = {
    "beam_search": "beam search: keeps the top k candidates each round and expands them",
    "genetic_algorithm": "a genetic algorithm: a population of candidates with mutation and/or crossover",
    "simulated_annealing": "simulated annealing: accepts worse candidates with a probability that cools",
    "bandit": "a multi-armed bandit (e.g. UCB or Thompson sampling) to allocate LM or utility calls",
    "epsilon_greedy": "epsilon-greedy exploration: with probability epsilon tries something random",
    "decomposition": "decomposition: improves the solution part by part (e.g. one function at a time)",
    "temperature_schedule": "a temperature schedule: changes the LM sampling temperature across calls",
    "local_search": "local search or hill climbing around the current best candidate",
    "iterative_refinement": "iterative refinement: repeatedly asks the LM to improve the best candidate so far",
    "self_consistency": "self-consistency or ensembling: votes or combines several LM answers",
    "prompt_hints": "prompt hints: adds hand-written hints or strategy ideas to the LM prompt",
    "utility_cache": "caching or de-duplicating candidates so the utility is not called twice on the same code",
    "self_reflection": "self-reflection: asks the LM to critique or review candidates before improving them",
    "best_of_n": "best-of-n: samples several candidates and keeps the one the utility scores highest",
}

_WORD_RULES: dict[str, tuple[frozenset[str], ...]] = {
    # each entry: alternatives, each a set of words that must all occur
    "beam_search": (frozenset({"beam"}),),
    "genetic_algorithm": (frozenset({"genetic"}), frozenset({"crossover"}), frozenset({"offspring"}),
                          frozenset({"chromosome"}), frozenset({"population", "mutate"}),
                          frozenset({"population", "mutation"})),
    "simulated_annealing": (frozenset({"anneal"}), frozenset({"annealing"}), frozenset({"cooling"})),
    "bandit": (frozenset({"bandit"}), frozenset({"ucb"}), frozenset({"ucb1"}), frozenset({"thompson"}),
               frozenset({"arm", "pulls"}), frozenset({"arms", "counts"}), frozenset({"arm", "counts"})),
    "decomposition": (frozenset({"decompose"}), frozenset({"decomposition"}), frozenset({"subproblem"}),
                      frozenset({"subproblems"}), frozenset({"part", "by"})),
    "local_search": (frozenset({"hill", "climb"}), frozenset({"hill", "climbing"}), frozenset({"local", "search"}),
                     frozenset({"neighbor"}), frozenset({"neighbors"}), frozenset({"neighbour"}),
                     frozenset({"neighbours"}), frozenset({"perturb"}), frozenset({"tweak"})),
    "self_consistency": (frozenset({"vote"}), frozenset({"votes"}), frozenset({"voting"}), frozenset({"majority"}),
                         frozenset({"ensemble"}), frozenset({"consensus"})),
    "utility_cache": (frozenset({"cache"}), frozenset({"cached"}), frozenset({"memo"}), frozenset({"seen"}),
                      frozenset({"dedup"}), frozenset({"unique"}), frozenset({"scored"}), frozenset({"memoize"})),
    "self_reflection": (frozenset({"critique"}), frozenset({"reflect"}), frozenset({"reflection"}),
                        frozenset({"feedback"}), frozenset({"review"})),
}
_HINT_TEXT = re.compile(r"\b(hint|hints|tip|tips|advice)\b", re.IGNORECASE)
_HINT_NAME = re.compile(r"hint|idea|strateg|tip|suggest", re.IGNORECASE)
_SPLIT_WORDS = re.compile(r"_+|(?<=[a-z0-9])(?=[A-Z])")
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def _words(tree: ast.AST) -> set[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
    return {word.lower() for name in names for word in _SPLIT_WORDS.split(name) if word}


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _structure_tags(tree: ast.AST, words: set[str]) -> set[str]:
    tags: set[str] = set()
    for loop in (n for n in ast.walk(tree) if isinstance(n, _LOOPS)):
        inside = list(ast.walk(loop))
        calls = [n for n in inside if isinstance(n, ast.Call)]
        if any(_name(c.func) == "nlargest" for c in calls) or any(
            isinstance(n, ast.Subscript) and isinstance(n.value, ast.Call) and _name(n.value.func) == "sorted"
            and isinstance(n.slice, ast.Slice) and n.slice.lower is None and n.slice.upper is not None
            for n in inside
        ):
            tags.add("beam_search")
        asks_lm = any(_name(c.func) in {"batch_prompt", "prompt", "complete"} for c in calls)
        keeps_best = any(
            isinstance(n, ast.Compare) and any("best" in _name(side).lower() for side in [n.left, *n.comparators])
            for n in inside
        )
        if asks_lm and keeps_best:
            tags.add("iterative_refinement")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = _name(node.func)
            if func == "max" and any(kw.arg == "key" and _name(kw.value) == "utility" for kw in node.keywords):
                tags.add("best_of_n")
            if func in {"lru_cache", "cache", "fromkeys"}:
                tags.add("utility_cache")
            if func == "set" and node.args and re.search(r"candidate|solution|code", ast.unparse(node.args[0])):
                tags.add("utility_cache")
            if func == "Counter":
                tags.add("self_consistency")
            if func == "exp" and words & {"temperature", "temp"} and "random" in words:
                tags.add("simulated_annealing")
            if func == "sqrt" and any(isinstance(a, ast.BinOp) and "log" in ast.unparse(a) for a in node.args):
                tags.add("bandit")
            if func == "split" and any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) and ("def" in a.value or "\n\n" in a.value)
                for a in node.args
            ):
                tags.add("decomposition")
            if func == "parse" and _name(getattr(node.func, "value", node.func)) == "ast":
                tags.add("decomposition")
            for kw in node.keywords:
                if kw.arg == "temperature" and not isinstance(kw.value, ast.Constant):
                    tags.add("temperature_schedule")
        elif (isinstance(node, ast.AugAssign) and "temp" in _name(node.target).lower()) or (
            isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp)
            and any("temp" in _name(t).lower() for t in node.targets)
        ):
            tags.add("temperature_schedule")
        elif isinstance(node, ast.Compare) and words & {"epsilon", "eps"} and any(
            isinstance(side, ast.Call) and _name(side.func) == "random" for side in [node.left, *node.comparators]
        ) and any(_name(side) in {"epsilon", "eps"} for side in [node.left, *node.comparators]):
            tags.add("epsilon_greedy")
    return tags


def _hint_tags(tree: ast.AST) -> set[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _HINT_TEXT.search(node.value):
            return {"prompt_hints"}
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List | ast.Tuple):
            strings = [e for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(strings) >= 2 and any(_HINT_NAME.search(_name(t)) for t in node.targets):
                return {"prompt_hints"}
    return set()


def code_tags(source: str) -> list[str]:
    """Strategy tags read off the code (sorted); none for source that does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    words = _words(tree)
    tags = {tag for tag, rules in _WORD_RULES.items() if any(rule <= words for rule in rules)}
    tags |= _structure_tags(tree, words) | _hint_tags(tree)
    return sorted(tags)


_SYSTEM = "You label Python programs by the search strategies they use. You answer with one word: YES or NO."
_ANSWER = re.compile(r"^\W*(YES|NO)\W*$", re.IGNORECASE)


def confirm_tags(
    lm: LanguageModel, source: str, candidates: Iterable[str], *, tag_prefix: str = "tags", max_tokens: int = 4
) -> list[str]:
    """The candidate tags an LM confirms for ``source``: one yes/no request per tag.

    The answer must be exactly ``YES`` or ``NO`` (case and surrounding punctuation ignored);
    anything else, or an ``LMError``, counts as not confirmed. Requests are tagged
    ``<tag_prefix>/<tag>`` so a response cache replays them.
    """
    confirmed: list[str] = []
    for tag in candidates:
        meaning = STRATEGY_TAGS.get(tag, tag.replace("_", " "))
        user = (
            f"```python\n{source}\n```\n\nDoes this program use {meaning}?\n"
            "Answer with exactly one word, YES or NO, and nothing else."
        )
        request = LMRequest(system=_SYSTEM, user=user, n=1, temperature=0.0, max_tokens=max_tokens,
                            tag=f"{tag_prefix}/{tag}")
        try:
            answer = lm.complete(request).texts[0]
        except LMError:
            continue
        match = _ANSWER.match(answer.strip())
        if match and match.group(1).upper() == "YES":
            confirmed.append(tag)
    return confirmed
