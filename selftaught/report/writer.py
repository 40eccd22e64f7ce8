"""``write_report``: read runs from the store (read-only) and write the figures and the HTML page.

Writes into ``out_dir``: ``meta_utility``, ``cost`` and ``safety`` as ``.png`` and ``.svg`` (and
``transfer`` when the runs hold a transfer table), and ``report.html``, one self-contained page with
the figures inlined. Works while a run is still writing: it reads one consistent snapshot of the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from selftaught.errors import ConfigError, StoreError
from selftaught.report import plots
from selftaught.report.page import ReportData, render_page
from selftaught.report.plots_transfer import plot_transfer
from selftaught.report.readstore import (
    connect_readonly,
    cost_by_iteration,
    initial_scores,
    iterations,
    run_summary,
    safety_counts,
    transfer_rows,
)

__all__ = ["REPORT_NAME", "read_report_data", "write_report"]

REPORT_NAME = "report.html"


def read_report_data(db_path: Path | str, run_ids: Sequence[str]) -> ReportData:
    """What the report shows for ``run_ids``, read in one transaction (StoreError for an unknown run)."""
    if not run_ids:
        raise ConfigError("name at least one run to report on")
    unique = list(dict.fromkeys(run_ids))
    db = connect_readonly(db_path)
    try:
        db.execute("BEGIN")  # one snapshot, even while a run is writing
        runs = [run_summary(db, run_id) for run_id in unique]
        data = ReportData(
            runs=runs,
            iterations={run_id: iterations(db, run_id) for run_id in unique},
            costs={run_id: cost_by_iteration(db, run_id) for run_id in unique},
            safety=safety_counts(db, unique),
            transfer=transfer_rows(db, unique),
            initial={run_id: initial_scores(db, run_id) for run_id in unique},
        )
        db.execute("COMMIT")
        return data
    finally:
        db.close()


def write_report(db_path: Path | str, run_ids: Sequence[str], out_dir: Path | str) -> Path:
    """Write the report of ``run_ids`` into ``out_dir`` (created if missing); returns the HTML page's path."""
    data = read_report_data(db_path, run_ids)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        labels = plots.labels_for(data.runs)
        tasks = {run.id: run.task for run in data.runs}
        written = {
            "meta_utility": plots.plot_meta_utility(data.iterations, out / "meta_utility", labels, data.initial,
                                                    tasks),
            "cost": plots.plot_cost(data.costs, out / "cost", labels),
            "safety": plots.plot_safety(data.safety, out / "safety"),
        }
        transfer = plot_transfer(data.transfer, out / "transfer")
        if transfer:
            written["transfer"] = transfer
        svgs = {name: next(p for p in paths if p.suffix == ".svg") for name, paths in written.items()}
        page = out / REPORT_NAME
        page.write_text(render_page(data, svgs), encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot write the report into {out}: {exc}") from exc
    return page
