"""Commands that look at runs and models: scan, safety, circumvention, report, dashboard."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from selftaught.config import LMConfig
from selftaught.errors import ConfigError
from selftaught.lm.registry import default_spec, get_lm
from selftaught.safety import (
    SECURITY_CATEGORIES,
    list_findings,
    run_circumvention,
    safety_report,
    scan_files,
    scan_run,
)
from selftaught.safety.render import circumvention_table, files_table, findings_table, report_tables
from selftaught.store import DB_NAME, RunStore

__all__ = ["circumvention", "dashboard", "report", "safety", "scan"]


def _console() -> Console:
    return Console(highlight=False)


def _store(runs_dir: Path) -> RunStore:
    if not (runs_dir / DB_NAME).exists():
        raise ConfigError(f"no run store in {runs_dir} (use --runs-dir)")
    return RunStore.in_dir(runs_dir)


def scan(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Scan files (when every target is a file) or the programs of runs; exit 1 on security findings."""
    targets: list[str] = args.targets
    if all(Path(target).is_file() for target in targets):
        scans = scan_files(targets)
        flagged = any(f.category in SECURITY_CATEGORIES for s in scans for f in s.findings)
        if args.json:
            print(json.dumps([s.to_dict() for s in scans]))
        else:
            _console().print(files_table(scans))
        return 1 if flagged else 0
    store = _store(args.runs_dir)
    found = {}
    for run_id in targets:
        store.get_run(run_id)
        scan_run(store, run_id)
        found[run_id] = list_findings(store, run_id)
    flagged = any(f.category in SECURITY_CATEGORIES for findings in found.values() for f in findings)
    if args.json:
        print(json.dumps({run_id: [f._asdict() for f in findings] for run_id, findings in found.items()}))
    else:
        for run_id, findings in found.items():
            _console().print(findings_table(findings, title=f"Findings in run {run_id}"))
    return 1 if flagged else 0


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
