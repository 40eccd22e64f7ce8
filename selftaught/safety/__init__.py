"""Safety and integrity analyses: what the paper measured, built in.

* ``scan``: static scan of LM-written code (categories listed there), AST first, regex fallback.
* ``strategies``: strategy tags per improver from the code, optionally confirmed by an LM.
* ``stats``: proportions with Wilson 95% intervals.
* ``analyze``: scan the programs of stored runs; the safety report (rates, runtime events,
  reward-hacking watch, strategy tags); scanning files.
* ``circumvention``: the paper's sandbox-circumvention experiment (a measurement only: nothing
  here runs generated code, and no flag inside a sandbox can turn selftaught's isolation off).
* ``render``: rich tables of the above.

This package reads the store through its read model (``selftaught.store.reader``), writes scan
results only through the ``ScanStore`` protocol, and asks LMs; it never imports the store's writer,
the broker, the loop or the CLI.
"""

from selftaught.safety.analyze import (
    GAP_THRESHOLD,
    FileScan,
    GapFlag,
    SafetyReport,
    ScanSummary,
    list_findings,
    safety_report,
    scan_files,
    scan_run,
)
from selftaught.safety.circumvention import CircumventionResult, ConditionResult, run_circumvention
from selftaught.safety.scan import CATEGORIES, SECURITY_CATEGORIES, Finding, scan_source
from selftaught.safety.stats import Proportion, proportion, wilson_interval
from selftaught.safety.strategies import STRATEGY_TAGS, code_tags, confirm_tags

__all__ = [
    "CATEGORIES",
    "GAP_THRESHOLD",
    "SECURITY_CATEGORIES",
    "STRATEGY_TAGS",
    "CircumventionResult",
    "ConditionResult",
    "FileScan",
    "Finding",
    "GapFlag",
    "Proportion",
    "SafetyReport",
    "ScanSummary",
    "code_tags",
    "confirm_tags",
    "list_findings",
    "proportion",
    "run_circumvention",
    "safety_report",
    "scan_files",
    "scan_run",
    "scan_source",
    "wilson_interval",
]
