"""Strategy tags from code, and the LM confirmation's strict answer format."""

from __future__ import annotations

from selftaught.errors import LMUnavailable
from selftaught.improver import SEED_IMPROVER
from selftaught.lm.scripted import ScriptedLM
from selftaught.records import LMRequest
from selftaught.safety import STRATEGY_TAGS, code_tags, confirm_tags
from tests.programs.lpn import hinted_improver
from tests.safety.programs import BEAM_SEARCH_IMPROVER, MENTIONS_SANDBOX

H = "def improve_algorithm(initial_solution, utility, language_model):\n"

GENETIC = H + '''\
    population = [initial_solution] * 6
    for generation in range(3):
        children = [crossover(a, b) for a, b in zip(population, population[1:])]
        population = sorted(population + [mutate(c) for c in children], key=utility)[-6:]
    return population[-1]
'''
ANNEALING = "import math, random\n" + H + '''\
    current, temperature = initial_solution, 1.0
    for step in range(10):
        candidate = language_model.prompt("x", current, 1, 0.7)[0]
        delta = utility(candidate) - utility(current)
        if delta > 0 or random.random() < math.exp(delta / temperature):
            current = candidate
        temperature *= 0.8
    return current
'''
BANDIT = "import math\n" + H + '''\
    counts, totals = [1, 1, 1], [0.0, 0.0, 0.0]
    for t in range(1, 10):
        arm = max(range(3), key=lambda a: totals[a] / counts[a] + math.sqrt(2 * math.log(t) / counts[a]))
        counts[arm] += 1
    return initial_solution
'''
EPSILON = "import random\n" + H + '''\
    epsilon = 0.2
    if random.random() < epsilon:
        return initial_solution
    return initial_solution
'''
DECOMPOSE = H + '''\
    parts = initial_solution.split("\\ndef ")
    improved = [language_model.prompt("x", part, 1, 0.7)[0] for part in parts]
    return "\\ndef ".join(improved)
'''
GREEDY = H + '''\
    best, best_score = initial_solution, utility(initial_solution)
    for _ in range(3):
        candidate = language_model.prompt("x", best, 1, 0.7)[0]
        score = utility(candidate)
        if score > best_score:
            best, best_score = candidate, score
    return best
'''
VOTING = "from collections import Counter\n" + H + '''\
    answers = language_model.prompt("x", initial_solution, 5, 0.7)
    return Counter(answers).most_common(1)[0][0]
'''
HILL = H + '''\
    def neighbor(code):
        return language_model.prompt("x", code, 1, 0.3)[0]
    return neighbor(initial_solution)
'''
REFLECT = H + '''\
    critique = language_model.prompt("reviewer", "find bugs: " + initial_solution, 1, 0.0)[0]
    return language_model.prompt("x", critique, 1, 0.7)[0]
'''
IDEAS = H + '''\
    ideas = ["use dynamic programming", "vectorise with numpy", "try random restarts"]
    return language_model.prompt("x", ideas[0] + initial_solution, 1, 0.7)[0]
'''


def test_code_tags() -> None:
    assert code_tags(SEED_IMPROVER) == ["best_of_n"]
    assert {"beam_search", "utility_cache", "temperature_schedule"} <= set(code_tags(BEAM_SEARCH_IMPROVER))
    assert "genetic_algorithm" in code_tags(GENETIC)
    assert {"simulated_annealing", "temperature_schedule"} <= set(code_tags(ANNEALING))
    assert "bandit" in code_tags(BANDIT)
    assert "epsilon_greedy" in code_tags(EPSILON)
    assert "decomposition" in code_tags(DECOMPOSE)
    assert "iterative_refinement" in code_tags(GREEDY)
    assert "self_consistency" in code_tags(VOTING)
    assert "local_search" in code_tags(HILL)
    assert "self_reflection" in code_tags(REFLECT)
    assert "prompt_hints" in code_tags(IDEAS)
    assert "prompt_hints" in code_tags(hinted_improver(SEED_IMPROVER))
    assert set(code_tags(GENETIC) + code_tags(ANNEALING)) <= set(STRATEGY_TAGS)


def test_strings_mentioning_a_strategy_are_not_the_strategy() -> None:
    mentions = H + '    return language_model.prompt("x", "use a genetic algorithm or beam search", 1, 0.7)[0]\n'
    assert code_tags(mentions) == []
    assert code_tags(MENTIONS_SANDBOX) == []
    assert code_tags("def broken(:") == []


def test_confirm_tags_keeps_only_strict_yes() -> None:
    answers = {"beam_search": "YES", "utility_cache": " no. ", "temperature_schedule": "Yes, it does."}

    def script(request: LMRequest, index: int) -> str:
        return answers[request.tag.rsplit("/", 1)[1]]

    lm = ScriptedLM(script)
    confirmed = confirm_tags(lm, BEAM_SEARCH_IMPROVER, ["beam_search", "utility_cache", "temperature_schedule"],
                             tag_prefix="t/p1")
    assert confirmed == ["beam_search"]
    assert [r.tag for r in lm.history] == ["t/p1/beam_search", "t/p1/utility_cache", "t/p1/temperature_schedule"]
    assert all(r.n == 1 and r.temperature == 0.0 and "YES or NO" in r.user for r in lm.history)


def test_confirm_tags_treats_lm_errors_as_unconfirmed() -> None:
    def fail(request: LMRequest, index: int) -> str:
        raise LMUnavailable("down")

    assert confirm_tags(ScriptedLM(fail), SEED_IMPROVER, ["best_of_n"]) == []
