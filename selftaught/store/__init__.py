"""The SQLite run store."""

from selftaught.store.runstore import DB_NAME, RunRecorder, RunRow, RunStore

__all__ = ["DB_NAME", "RunRecorder", "RunRow", "RunStore"]
