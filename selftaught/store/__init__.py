"""The SQLite run store: the writer, ``RunStore``, exported here; the read model every front end uses
is ``selftaught.store.reader.StoreReader`` (front ends import that module, never this package)."""

from selftaught.store.runstore import DB_NAME, ProgramRow, RunCache, RunRecorder, RunRow, RunStore, TransferEntry

__all__ = ["DB_NAME", "ProgramRow", "RunCache", "RunRecorder", "RunRow", "RunStore", "TransferEntry"]
