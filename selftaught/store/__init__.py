"""The SQLite run store."""

from selftaught.store.runstore import DB_NAME, ProgramRow, RunRecorder, RunRow, RunStore

__all__ = ["DB_NAME", "ProgramRow", "RunRecorder", "RunRow", "RunStore"]
