"""The improver contract: the seed improver and the descriptions improvers are shown."""

from selftaught.improver.describe import meta_description
from selftaught.improver.seed import SEED_IMPROVER

__all__ = ["SEED_IMPROVER", "meta_description"]
