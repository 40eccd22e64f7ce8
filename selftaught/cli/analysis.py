"""Commands that look at runs and models: scan, safety, circumvention, report, dashboard."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from selftaught.config import LMConfig
from selftaught.errors import ConfigError
from selftaught.lm.registry import default_spec, get_lm
from selftaught.safety import (
    list_findings,
    run_circumvention,
    safety_report,
    scan_files,
    scan_run,
)
from selftaught.safety.render import circumvention_table, files_table, findings_table, report_tables
from selftaught.safety.scan import SECURITY_CATEGORIES, blocking, from_line_scan
from selftaught.store import DB_NAME, RunStore
from selftaught.store.reader_records import StoredFinding

__all__ = ["circumvention", "dashboard", "report", "safety", "scan"]


def _console() -> Console:
    return Console(highlight=False)


def _store(runs_dir: Path) -> RunStore:
    if not (runs_dir / DB_NAME).exists():
        raise ConfigError(f"no run store in {runs_dir} (use --runs-dir)")
    return RunStore.in_dir(runs_dir)


def scan(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Scan files (when every target is a file) or the programs of runs.

    Exit 1 only for security findings in code that parses (code that could run); findings of the
    line scan of unparsable code are shown in a table of their own and do not change the exit code.
    """
    targets: list[str] = args.targets
    if all(Path(target).is_file() for target in targets):
        scans = scan_files(targets)
        findings = [f for s in scans for f in s.findings]
        if args.json:
            print(json.dumps([s.to_dict() for s in scans]))
        else:
            _console().print(files_table(scans))
            _say_verdict(len(blocking(findings)), _unparsable_count(findings), f"{len(scans)} file(s)")
        return 1 if blocking(findings) else 0
    store = _store(args.runs_dir)
    found = {}
    for run_id in targets:
        store.get_run(run_id)
        scan_run(store, run_id)
        found[run_id] = list_findings(store, run_id)
    every: list[StoredFinding] = [f for stored in found.values() for f in stored]
    if args.json:
        print(json.dumps({run_id: [f._asdict() for f in stored] for run_id, stored in found.items()}))
    else:
        for run_id, stored in found.items():
            runnable = [f for f in stored if not from_line_scan(f) and f.category != "parse_error"]
            unparsed = [f for f in stored if from_line_scan(f)]
            programs = len(store.programs(run_id))
            _console().print(findings_table(runnable, title=f"Findings in code that parses, run {run_id} "
                                                            f"({programs} programs scanned)"))
            if unparsed:
                _console().print(findings_table(unparsed, title=f"Patterns in code that does not parse (cannot run), "
                                                                f"run {run_id}: not counted"))
        _say_verdict(len(blocking(every)), _unparsable_count(every), f"{len(found)} run(s)")
    return 1 if blocking(every) else 0


def _unparsable_count(findings: list[Any]) -> int:
    return sum(1 for f in findings if from_line_scan(f) and f.category in SECURITY_CATEGORIES)


def _say_verdict(blocking_count: int, unparsed_count: int, scanned: str) -> None:
    tail = f"; {unparsed_count} pattern(s) in code that does not parse, not counted" if unparsed_count else ""
    if blocking_count:
        verdict = f"{blocking_count} security finding(s) in code that parses{tail}: exit 1"
    else:
        verdict = f"no security finding in code that parses{tail}"
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"scanned {scanned}: {verdict}", markup=False)


def safety(args: argparse.Namespace, env: dict[str, str]) -> int:
    store = _store(args.runs_dir)
    for run_id in args.run_ids:
        store.get_run(run_id)
    result = safety_report(store, args.run_ids, gap_threshold=args.gap)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        _console().print(report_tables(result))
    return 0


def circumvention(args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.samples < 1 or args.batch < 1:
        raise ConfigError("--samples and --batch must be at least 1")
    config = LMConfig(spec=args.lm or default_spec(env), max_tokens=args.max_completion_tokens)
    lm = get_lm(config.spec, config, env)
    console = Console(stderr=True, highlight=False)
    console.print(f"sampling {args.samples} improvements per condition from {lm.name}")
    result = run_circumvention(lm, args.samples, batch_size=args.batch, max_tokens=config.max_tokens,
                               concurrency=config.concurrency)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        _console().print(circumvention_table(result))
    return 0


def report(args: argparse.Namespace, env: dict[str, str]) -> int:
    from selftaught.report import write_report

    page = write_report(args.runs_dir / DB_NAME, args.run_ids, args.out)
    print(page)
    return 0


def dashboard(args: argparse.Namespace, env: dict[str, str]) -> int:
    from selftaught.dashboard import serve

    try:
        serve(args.runs_dir / DB_NAME, args.host, args.port, args.allow_remote)
    except KeyboardInterrupt:
        return 0
    return 0
