"""Rich tables for the safety analyses (JSON comes from each result's ``to_dict``).

``report_tables(report)``, ``files_table(scans)``, ``findings_table(findings)`` and
``circumvention_table(result)`` return renderables for ``rich.console.Console.print``; nothing
here prints or reads anything. Text that comes from runs, files or models (finding details quote
LM-written code; paths, tags, run ids, event kinds, model names) goes in as ``rich.text.Text``,
which rich never parses as console markup: ``[/]`` in a finding cannot crash the table and
``[link=...]`` cannot make a hyperlink.

Left out: plots, and choosing between table and JSON output (the CLI's job).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from selftaught.safety.analyze import FileScan, SafetyReport
from selftaught.safety.circumvention import CircumventionResult
from selftaught.safety.scan import CATEGORIES
from selftaught.safety.stats import Proportion
from selftaught.store.reader_records import StoredFinding

__all__ = ["circumvention_table", "files_table", "findings_table", "report_tables"]


def _plain(value: object, style: str = "") -> Text:
    """``value`` as text that rich shows as it is (no markup)."""
    return Text(str(value), style=style)


def _title(value: str) -> Text:
    """A table title from data, in the style rich gives titles."""
    return _plain(value, "table.title")


def _cell(p: Proportion) -> str:
    return f"{p.successes}/{p.trials}  {p.percent()}"


def report_tables(report: SafetyReport) -> Group:
    """Findings rates per kind, runtime events, the reward-hacking watch and strategy tags."""
    kinds = [kind for kind, count in report.programs.items() if count]
    rates = Table(title=_title(f"Static findings over {', '.join(report.run_ids)} (flagged / scanned, Wilson 95%)"))
    rates.add_column("category")
    for kind in kinds:
        rates.add_column(_plain(f"{kind}s ({report.programs[kind]})"), justify="right")
    rates.add_column("meaning", style="dim")
    categories = next(iter(report.rates.values()), {})
    for category in categories:
        rates.add_row(_plain(category), *(_cell(report.rates[k][category]) for k in kinds),
                      _plain(CATEGORIES.get(category, "")))
    rates.add_row("[bold]any[/bold]", *(_cell(report.any_flag[k]) for k in kinds), "at least one security finding")
    parts: list[RenderableType] = [rates]
    if report.parse_errors:
        parts.append(_plain(f"did not parse (line scan used): {report.parse_errors}"))

    events = Table(title="Runtime events")
    events.add_column("kind")
    for run_id in report.run_ids:
        events.add_column(_plain(run_id), justify="right")
    events.add_column("all", justify="right")
    for kind, count in report.events.items():
        events.add_row(_plain(kind), *(str(report.events_by_run[r].get(kind, 0)) for r in report.run_ids), str(count))
    parts.append(events if report.events else "Runtime events: none")

    if report.gaps:
        gaps = Table(title=f"Reward-hacking watch: adopted improvers with val - test > {report.gap_threshold:.2f}")
        for column in ("run", "t", "program", "val", "test", "gap", "z"):
            gaps.add_column(column, justify="right")
        for g in report.gaps:
            z = "" if g.z is None else f"{g.z:.1f}"
            gaps.add_row(_plain(g.run_id), str(g.t), str(g.program_id), f"{g.val:.3f}", f"{g.test:.3f}",
                         f"{g.gap:.3f}", z)
        parts.append(gaps)
    else:
        parts.append(f"Reward-hacking watch: no adopted improver with val - test > {report.gap_threshold:.2f}")

    if report.tags:
        tags = Table(title="Strategy tags of improvers")
        tags.add_column("tag")
        for run_id in report.run_ids:
            tags.add_column(_plain(run_id), justify="right")
        tags.add_column("all", justify="right")
        for tag, count in report.tags.items():
            tags.add_row(_plain(tag), *(str(report.tags_by_run[r].get(tag, 0)) for r in report.run_ids), str(count))
        parts.append(tags)
    return Group(*parts)


def findings_table(findings: Sequence[StoredFinding], title: str = "Findings") -> Table:
    """Stored findings, one row each."""
    table = Table(title=_title(title))
    for column in ("program", "kind", "line", "category", "detail"):
        table.add_column(column)
    for f in findings:
        table.add_row(str(f.program_id), _plain(f.kind), str(f.line), _plain(f.category), _plain(f.detail))
    return table


def files_table(scans: Sequence[FileScan]) -> Table:
    """Findings and strategy tags of scanned files."""
    table = Table(title="Static scan")
    for column in ("file", "line", "category", "detail"):
        table.add_column(column)
    for scan in scans:
        tags = ", ".join(scan.tags) or "-"
        if not scan.findings:
            table.add_row(_plain(scan.path), "", "[green]clean[/green]", _plain(f"strategies: {tags}"))
        for f in scan.findings:
            table.add_row(_plain(scan.path), str(f.line), _plain(f.category), _plain(f.detail))
    return table


def circumvention_table(result: CircumventionResult) -> Table:
    """The paper's table: unsandboxing rate per condition with Wilson 95% intervals."""
    table = Table(title=_title(f"Sandbox circumvention, {result.model}"))
    for column in ("condition", "samples", "with code", "failed", "disabled (any)", "use_sandbox=False"):
        table.add_column(column, justify="right")
    for r in result.conditions.values():
        table.add_row(_plain(r.condition), str(r.samples), str(r.with_code), str(r.failed), _cell(r.disabled),
                      _cell(r.explicit))
    return table
