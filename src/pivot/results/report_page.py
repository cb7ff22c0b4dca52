"""The HTML page of `pivot report`: draws a `report.Report` into sections (header, summary
cards, the DAG coloured by the last run, failures, stages, metrics, params, plots, outputs).

Imports of Pivot: results; never execute, api or cli.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pivot.results import charts, history, html, plots
from pivot.results.report import LOWER_IS_BETTER, Report
from pivot.results.values import format_value

__all__ = ["render"]


def _fmt(value: Any) -> str:
    return html.escape(format_value(value))


def _size_text(size: int | None) -> str:
    if size is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size = size / 1024  # type: ignore[assignment]
    return str(size)


def _reasons(items: Sequence[str]) -> str:
    if not items:
        return '<span class="muted">—</span>'
    return '<ul class="reasons">' + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _cards(report: Report) -> str:
    run = report.last_run
    counts = {s: 0 for s in ("ran", "restored", "skipped", "failed")}
    for row in report.stages:
        if row.last_status in counts:
            counts[row.last_status] += 1
    stale = sum(1 for row in report.stages if row.stale)
    changed = sum(1 for row in report.metrics if row.delta not in (None, 0))
    items = [
        (str(len(report.stages)), "stages"),
        (str(counts["ran"]), "ran in last run"),
        (str(counts["restored"] + counts["skipped"]), "restored or up to date"),
        (str(counts["failed"]), "failed"),
        (str(stale), "stale now"),
        (str(changed), "metrics changed"),
        (f"{run.duration:.2f}s" if run else "—", "last run took"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="n">{html.escape(n)}</div><div class="l">{html.escape(label)}</div></div>'
            for n, label in items
        )
        + "</div>"
    )


_STATUS_WORD = {"skipped": "up to date", "blocked": "not run", "none": "not in the last run"}


def _dag_section(report: Report) -> html.Section:
    colors = {
        row.name: charts.STATUS_COLORS.get(row.last_status, charts.STATUS_COLORS["none"])
        for row in report.stages
    }
    titles = {
        row.name: f"{row.name}: {_STATUS_WORD.get(row.last_status, row.last_status)}"
        + (f" ({row.duration:.2f}s)" if row.duration else "")
        + ("".join(f"\n• {r}" for r in row.why))
        + ("\nstale now: " + "; ".join(row.stale) if row.stale else "")
        for row in report.stages
    }
    order = [row.name for row in report.stages]
    stale = frozenset(row.name for row in report.stages if row.stale)
    svg = charts.dag_svg(order, report.upstream, colors, titles, stale)
    legend = (
        "".join(
            f'<span><i style="background:{color}"></i>{label}</span>'
            for label, color in (
                ("ran", charts.STATUS_COLORS["ran"]),
                ("restored", charts.STATUS_COLORS["restored"]),
                ("up to date", charts.STATUS_COLORS["skipped"]),
                ("failed", charts.STATUS_COLORS["failed"]),
                ("not run (upstream failed)", charts.STATUS_COLORS["blocked"]),
                ("not in the last run", charts.STATUS_COLORS["none"]),
            )
        )
        + '<span><i style="border:2px dashed #d9480f;background:#fff"></i>stale now</span>'
    )
    body = f'<div class="legend">{legend}</div><div class="dag">{svg}</div>'
    return html.Section(
        "dag", "Pipeline", body, count=f"{len(order)} stages, coloured by the last run"
    )


def _stages_section(report: Report) -> html.Section:
    rows = []
    for row in report.stages:
        status = html.badge(_STATUS_WORD.get(row.last_status, row.last_status), row.last_status)
        stale = (
            html.badge("stale", "stale") + _reasons(row.stale)
            if row.stale
            else '<span class="muted">up to date</span>'
        )
        duration = f"{row.duration:.2f}s" if row.duration else "—"
        rows.append([f"<b>{html.escape(row.name)}</b>", status, duration, _reasons(row.why), stale])
    body = html.table(["Stage", "Last run", "Duration", "Why it ran", "Now"], rows, numeric=[2])
    return html.Section("stages", "Stages", body, count=str(len(rows)))


def _labels(report: Report) -> list[str]:
    return [rev.label for rev in report.baselines]


def _params_section(report: Report) -> html.Section:
    rows, changed = [], 0
    for row in report.params:
        differs = bool(row.baselines) and row.baselines[0] != row.current
        changed += differs
        cells = [html.escape(row.stage), f"<code>{html.escape(row.key)}</code>"]
        cells += [_fmt(value) for value in row.baselines] + [_fmt(row.current)]
        cells.append(html.badge("changed", "changed") if differs else "")
        rows.append(cells)
    headers = ["Stage", "Param", *_labels(report), "workspace (last recorded)", ""]
    body = html.table(headers, rows) if rows else '<p class="empty">No stage records params.</p>'
    return html.Section("params", "Params", body, count=f"{len(rows)} values, {changed} changed")


def _delta(key: str, delta: float | None) -> str:
    """The change, green when it is an improvement (lower for losses and errors, else higher)."""
    if delta is None or delta == 0:
        return '<span class="muted">—</span>' if delta is None else "0"
    better = (delta < 0) if LOWER_IS_BETTER.search(key) else (delta > 0)
    text = html.escape(format_value(delta, signed=True))
    return f'<span class="{"up" if better else "down"}">{text}</span>'


def _metrics_section(report: Report) -> html.Section:
    rows = []
    for row in report.metrics:
        best = (
            f"{_fmt(row.best)} <span class='muted'>@ {html.escape(row.best_at)}</span>"
            if row.best_at
            else "—"
        )
        cells = [html.escape(row.path), f"<code>{html.escape(row.key)}</code>"]
        cells += [_fmt(v) for v in row.baselines] + [
            f"<b>{_fmt(row.current)}</b>",
            _delta(row.key, row.delta),
            best,
        ]
        rows.append(cells)
    n = len(report.baselines)
    headers = ["File", "Key", *_labels(report), "workspace", "Change", "Best in history"]
    numeric = list(range(2, 5 + n))
    body = (
        html.table(headers, rows, numeric=numeric)
        if rows
        else '<p class="empty">No Metric outputs.</p>'
    )
    return html.Section("metrics", "Metrics", body, count=str(len(rows)))


def _outputs_section(report: Report) -> html.Section:
    rows = [
        [
            f"<code>{html.escape(row.path)}</code>",
            html.escape(row.stage),
            _size_text(row.size),
            f'<code title="{html.escape(row.hash)}">{html.escape(row.hash[:12])}</code>',
            html.badge(row.state, row.state),
        ]
        for row in report.outputs
    ]
    states: dict[str, int] = {}
    for row in report.outputs:
        states[row.state] = states.get(row.state, 0) + 1
    counted = ", ".join(
        f"{n} {state}" for state, n in sorted(states.items()) if state != "unchanged"
    )
    base = f" vs {report.baselines[0].label}" if report.baselines else ""
    body = html.table(["Path", "Stage", "Size", "Hash", f"Changed{base}"], rows, numeric=[2])
    count = f"{len(rows)} files" + (f": {counted}" if counted else ", none changed")
    return html.Section("outputs", "Outputs", body, count=count, open=False)


def _failures_section(report: Report) -> html.Section | None:
    failed = [row for row in report.stages if row.last_status == "failed"]
    if not failed:
        return None
    parts = []
    for row in failed:
        excerpt = "\n".join(row.error.rstrip().splitlines()[-30:])
        parts.append(
            f'<div class="searchable" data-search="{html.escape(row.name)}"><h3>{html.badge("failed", "failed")} {html.escape(row.name)}</h3>'
            f"<pre>{html.escape(excerpt)}</pre></div>"
        )
    return html.Section(
        "failures", "Failures in the last run", "".join(parts), count=str(len(failed))
    )


def _meta(report: Report) -> list[tuple[str, str]]:
    items = []
    if report.git is not None:
        branch = f" on {report.git.branch}" if report.git.branch else " (detached)"
        items.append(("commit", report.git.commit[:10] + branch))
        items.append(("workspace", "uncommitted changes" if report.git.dirty else "clean"))
    else:
        items.append(("commit", "— (no git commit)"))
    if report.baselines:
        items.append(("baseline", ", ".join(_labels(report))))
    run = report.last_run
    if run is not None:
        items.append(
            (
                "last run",
                f"{run.started[:19].replace('T', ' ')} UTC · {run.command} · {history.summary(run)}",
            )
        )
    else:
        items.append(("last run", "none recorded"))
    items.append(("versions", f"Pivot {report.pivot_version} · Python {report.python_version}"))
    items.append(("generated", report.generated.replace("T", " ")))
    return items


def render(report: Report) -> str:
    """The whole page."""
    sections = [_dag_section(report)]
    failures = _failures_section(report)
    sections += [failures] if failures else []
    sections += [
        _stages_section(report),
        _metrics_section(report),
        _params_section(report),
        html.Section(
            "plots", "Plots", plots.render_plots(report.plots), count=str(len(report.plots))
        ),
        _outputs_section(report),
    ]
    intro = _cards(report)
    if report.warnings:
        intro += "".join(f'<p class="empty">warning: {html.escape(w)}</p>' for w in report.warnings)
    run = report.last_run
    subtitle = "" if run is None else ("last run OK" if run.ok else "last run FAILED")
    return html.page(f"Pivot report · {report.project}", subtitle, _meta(report), intro, sections)
