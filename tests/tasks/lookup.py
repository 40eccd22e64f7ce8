"""The lookup attack: a solution that regenerates the hidden splits from the package's public code.

It imports the task from ``selftaught`` (which is importable inside the sandbox), regenerates
``val`` and ``test``, finds the instance whose arguments it was just given and returns the stored
answer; when it finds none it falls back to an honest guess. Against public splits it is perfect;
against splits drawn under a secret it can do no better than its fallback.
"""

from __future__ import annotations

# task name -> (the answer a matched instance gives, the honest fallback)
ANSWERS: dict[str, tuple[str, str]] = {
    "lpn": ('instance.answer["test_y"]', "np.random.randint(0, 2, size=len(args[2])).tolist()"),
    "parity": ('instance.answer["test_y"]', "np.random.randint(0, 2, size=len(args[2])).tolist()"),
    "string_grid": ('instance.answer["hidden"]', "args[0]"),
    "three_sat": ('instance.answer["hidden"]', "None"),
}

_TEMPLATE = '''
import numpy as np

from selftaught.tasks import get_task


def _plain(args):
    return repr([a.tolist() if hasattr(a, "tolist") else a for a in args])


def algorithm(*args):
    wanted = _plain(args)
    task = get_task("TASK")
    for split in ("val", "test"):
        for instance in task.instances(split):
            if _plain(instance.args) == wanted:
                return ANSWER
    return FALLBACK
'''


def lookup_solution(spec: str) -> str:
    """The lookup solution for the task ``spec`` (one of ``ANSWERS``)."""
    answer, fallback = ANSWERS[spec.split(":")[0]]
    return _TEMPLATE.replace("TASK", spec).replace("ANSWER", answer).replace("FALLBACK", fallback)
