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
from selftaught.store.reader import StoreReader

__all__ = ["REPORT_NAME", "read_report_data", "write_report"]

REPORT_NAME = "report.html"


def read_report_data(db_path: Path | str, run_ids: Sequence[str]) -> ReportData:
    """What the report shows for ``run_ids``, read in one transaction (StoreError for an unknown run)."""
    if not run_ids:
        raise ConfigError("name at least one run to report on")
    unique = list(dict.fromkeys(run_ids))
    with StoreReader.open(db_path) as db, db.snapshot():  # one snapshot, even while a run is writing
        return ReportData(
            runs=[db.run(run_id) for run_id in unique],
            iterations={run_id: db.iterations(run_id) for run_id in unique},
            costs={run_id: db.cost_by_iteration(run_id) for run_id in unique},
            safety=db.safety_counts(unique),
            transfer=db.transfer_rows(unique),
            initial={run_id: db.initial_scores(run_id) for run_id in unique},
        )


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
