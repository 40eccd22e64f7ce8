"""Task files: a user's own task declared in one Python file (being written)."""

from __future__ import annotations

from pathlib import Path

from selftaught.errors import TaskError
from selftaught.tasks.base import Task

__all__ = ["load_task_file"]


def load_task_file(path: Path) -> Task:
    """The task declared in the Python file at ``path``."""
    raise TaskError(f"task files are not supported yet: {path}")
