"""The seed improver I_0 (source text). What improvers are shown and offered besides their own
source (the proxies, the ``helpers`` module, the meta-utility's description) is ``selftaught.proxy``."""

from selftaught.improver.seed import SEED_IMPROVER

__all__ = ["SEED_IMPROVER"]
