"""Static reports of finished or running runs: PNG/SVG figures and one self-contained HTML page.

Reads the run store through its read model (``selftaught.store.reader``, read-only) and imports no
engine code (only the standard library, Jinja2 for the page, ``selftaught.errors``/``records``/``stats``
and, lazily, matplotlib). ``selftaught report RUN_ID...`` calls ``write_report``.
"""

from selftaught.report.writer import REPORT_NAME, read_report_data, write_report
from selftaught.stats import mean_se, wilson_interval

__all__ = [
    "REPORT_NAME",
    "mean_se",
    "read_report_data",
    "wilson_interval",
    "write_report",
]
