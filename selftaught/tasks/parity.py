"""Learning parity without noise, a transfer task of the paper (Table 1).

Exactly LPN (see ``selftaught.tasks.lpn``) with clean train labels: ``algorithm(train_X, train_y,
test_X)`` gets 100 noiseless train examples of a 10-bit parity whose secret bits are each present
with probability 0.3, and predicts the 20 test labels. Splits: ``train`` 20, ``val`` 20, ``test``
50 instances; 2 s per call (the reference had no time limit). The parameters are LPN's, with
``noise = 0``; preset ``hard`` has 64 bits, where exhaustive search cannot fit the time limit but
Gaussian elimination over GF(2) solves every instance.

Score of one instance: test accuracy in [0, 1], with the same strict shape check as LPN: only
shape (20,) or (20, 1) with 0/1 values counts, anything else scores 0. The reference scorer did not
reshape predictions, which left the paper's broadcasting reward hack (>1000% "accuracy") open here;
it is closed. The initial solution guesses at random (about 50%).

Reference scoring (``--scoring reference``): the same accuracy; an error or time-out costs only its
instance (0), as in the reference scorer. The reference's missing reshape is not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence

from selftaught.tasks.common import SeededTask
from selftaught.tasks.lpn import LPNTask, parity_schema

__all__ = ["ParityTask"]


class ParityTask(LPNTask):
    """Learning parity without label noise; see the module docstring."""

    name = "parity"
    title = "parity without noise"
    schema = parity_schema(0.0)
    presets = {"paper": {}, "hard": {"bits": 64}}
    reference_note = ""

    def reference_combine(self, scores: Sequence[float], failures: Sequence[str]) -> float:
        """The reference noiseless-parity scorer: a failure costs only its instance."""
        return SeededTask.reference_combine(self, scores, failures)
