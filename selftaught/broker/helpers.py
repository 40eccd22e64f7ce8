"""The ``helpers`` module an improver may import in its sandbox, as in the paper's reference code.

``from helpers import extract_code`` works in every improver job: the broker ships this source
with the job (``Job.modules``). ``extract_code`` takes one answer (returns its largest fenced code
block, or None) or a list of answers (returns a list). ``EXTRACT_CODE_SOURCE`` is the single-answer
function's text, which the seed improver also carries in its own source.
"""

from __future__ import annotations

__all__ = ["EXTRACT_CODE_SOURCE", "HELPERS_SOURCE", "ends_in_open_block"]

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


def ends_in_open_block(text: str) -> bool:
    """Whether ``text`` ends inside a fenced code block (the fence rules of ``extract_code``)."""
    depth = 0
    for line in text.splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            depth += 1 if fence != "```" or depth == 0 else -1
    return depth > 0
