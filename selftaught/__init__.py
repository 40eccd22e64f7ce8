"""selftaught: the Self-Taught Optimizer (STOP) behind a real trust boundary.

The public names below load lazily, so that sandbox workers importing ``selftaught.sandbox``
do not pull in the LM SDKs, the store or the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Broker": "selftaught.broker",
    "Budgets": "selftaught.config",
    "LMConfig": "selftaught.config",
    "LanguageModel": "selftaught.lm.base",
    "MetaUtility": "selftaught.meta_utility",
    "RunConfig": "selftaught.config",
    "RunStore": "selftaught.store",
    "RunSummary": "selftaught.app",
    "SEED_IMPROVER": "selftaught.improver",
    "SandboxConfig": "selftaught.config",
    "SelftaughtError": "selftaught.errors",
    "Task": "selftaught.tasks",
    "TaskUtility": "selftaught.meta_utility",
    "get_lm": "selftaught.lm.registry",
    "get_task": "selftaught.tasks",
    "list_tasks": "selftaught.tasks",
    "resume_run": "selftaught.app",
    "start_run": "selftaught.app",
}

__all__ = [
    "Broker",
    "Budgets",
    "LMConfig",
    "LanguageModel",
    "MetaUtility",
    "RunConfig",
    "RunStore",
    "RunSummary",
    "SEED_IMPROVER",
    "SandboxConfig",
    "SelftaughtError",
    "Task",
    "TaskUtility",
    "get_lm",
    "get_task",
    "list_tasks",
    "resume_run",
    "start_run",
]

if TYPE_CHECKING:
    from selftaught.app import RunSummary, resume_run, start_run
    from selftaught.broker import Broker
    from selftaught.config import Budgets, LMConfig, RunConfig, SandboxConfig
    from selftaught.errors import SelftaughtError
    from selftaught.improver import SEED_IMPROVER
    from selftaught.lm.base import LanguageModel
    from selftaught.lm.registry import get_lm
    from selftaught.meta_utility import MetaUtility, TaskUtility
    from selftaught.store import RunStore
    from selftaught.tasks import Task, get_task, list_tasks


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'selftaught' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
