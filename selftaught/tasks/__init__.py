"""Downstream tasks: the built-ins, the registry and the task-file plugin API."""

from __future__ import annotations

from selftaught.tasks.base import Task
from selftaught.tasks.plugin import define_task
from selftaught.tasks.registry import get_task, list_tasks

__all__ = ["Task", "define_task", "get_task", "list_tasks"]
