"""The improver contract's seed: the seed improver, and the description improvers of improvers are shown.

The description (``meta_description``) belongs to the proxy contract and lives in
``selftaught.proxy``; it is offered here too, beside the seed it is shown with.
"""

from selftaught.improver.seed import SEED_IMPROVER
from selftaught.proxy import meta_description

__all__ = ["SEED_IMPROVER", "meta_description"]
