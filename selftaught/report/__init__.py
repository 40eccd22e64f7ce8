"""Static reports of finished or running runs: PNG/SVG figures and one self-contained HTML page.

Reads the run store read-only and imports no engine code (only the standard library, Jinja2 for the
page, ``selftaught.errors`` and, lazily, matplotlib). ``selftaught report RUN_ID...`` calls ``write_report``.
"""

from selftaught.report.readstore import TRANSFER_TABLE, connect_readonly
from selftaught.report.writer import REPORT_NAME, read_report_data, write_report
from selftaught.stats import mean_se, wilson_interval

__all__ = [
    "REPORT_NAME",
    "TRANSFER_TABLE",
    "connect_readonly",
    "mean_se",
    "read_report_data",
    "wilson_interval",
    "write_report",
]
