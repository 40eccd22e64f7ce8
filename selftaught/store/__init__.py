"""The SQLite run store."""

from selftaught.store.runstore import DB_NAME, ProgramRow, RunCache, RunRecorder, RunRow, RunStore, TransferEntry

__all__ = ["DB_NAME", "ProgramRow", "RunCache", "RunRecorder", "RunRow", "RunStore", "TransferEntry"]
