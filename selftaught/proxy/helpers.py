"""The ``helpers`` module an improver may import in its sandbox, as in the paper's reference code.

``from helpers import extract_code`` works in every improver job: the broker ships this source
with the job (``HELPERS_MODULE`` in ``Job.modules``). ``extract_code`` takes one answer (returns
its largest fenced code block, or None) or a list of answers (returns a list).
``EXTRACT_CODE_SOURCE`` is the single-answer function's text, which the seed improver also carries
in its own source.

That text is the one parser of fenced code: the trusted side runs the same text (``extract_code``
here, compiled from it once at import) wherever it asks what code an answer holds, e.g. the
step summaries of ``report.steps``. ``ends_in_open_block`` applies its fence rules to say whether
an answer was cut off inside a block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

__all__ = ["EXTRACT_CODE_SOURCE", "HELPERS_MODULE", "HELPERS_SOURCE", "ends_in_open_block", "extract_code"]

EXTRACT_CODE_SOURCE = '''\
def extract_code(text):
    """Return the largest fenced code block in text, or None.

    Fences nest: a fence line with a language tag opens a block, a bare fence closes the innermost
    one (or opens a block at top level), so code that itself holds fenced text survives whole.
    A block left open at the end of the text does not count: an answer cut off at the completion
    limit must not pass for whole code (the broker records such answers).
    """
    blocks, current, depth = [], [], 0
    for line in text.splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            opening = fence != "```" or depth == 0
            depth += 1 if opening else -1
            if depth == 1 and opening:
                current = []
                continue
            if depth == 0:
                blocks.append("\\n".join(current))
                continue
        if depth > 0:
            current.append(line)
    blocks = [block for block in blocks if block.strip()]
    return max(blocks, key=len) if blocks else None
'''

HELPERS_SOURCE = (
    EXTRACT_CODE_SOURCE.replace("def extract_code(text):", "def _largest_block(text):", 1)
    + '''

def extract_code(answer):
    """The largest fenced code block of an answer (or None); a list of answers gives a list."""
    if isinstance(answer, (list, tuple)):
        return [_largest_block(text) for text in answer]
    return _largest_block(answer)
'''
)

HELPERS_MODULE = ("helpers", HELPERS_SOURCE)
"""The ``(name, source)`` pair an improver job carries in ``Job.modules``."""


def _compile_extract_code() -> Callable[[str], str | None]:
    namespace: dict[str, object] = {}
    exec(compile(EXTRACT_CODE_SOURCE, "<helpers.extract_code>", "exec"), namespace)  # noqa: S102 - our own constant text
    return cast("Callable[[str], str | None]", namespace["extract_code"])


extract_code = _compile_extract_code()
"""The largest fenced code block of one answer, or None (a block left open at the end does not
count): ``EXTRACT_CODE_SOURCE`` itself, run in the broker."""


def ends_in_open_block(text: str) -> bool:
    """Whether ``text`` ends inside a fenced code block (the fence rules of ``extract_code``)."""
    depth = 0
    for line in text.splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            depth += 1 if fence != "```" or depth == 0 else -1
    return depth > 0
