"""A read-only web dashboard over the run store: runs, one run's curve and improver lineage,
programs with diffs, LM calls and a compare view.

Imports no engine code: it reads the store only through its read model (``selftaught.store.reader``,
one read-only connection and snapshot per request) and formats with ``selftaught.report``; never
runs stored code; renders every page from a template with autoescaping on (Jinja2), so every
stored string is escaped.
``selftaught dashboard`` calls ``serve``; tests and embedders use ``make_server``.
"""

from selftaught.dashboard.server import CSP, DEFAULT_HOST, DEFAULT_PORT, DashboardServer, make_server, serve

__all__ = ["CSP", "DEFAULT_HOST", "DEFAULT_PORT", "DashboardServer", "make_server", "serve"]
