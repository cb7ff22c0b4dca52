"""`pivot report`: one self-contained HTML page of the project's state: header (commit, dirty,
versions, last run), the DAG coloured by the last run, each stage's status and why it ran,
params and metrics against baseline revisions (with delta and the best value in history),
every plot, the outputs, and failures with their traceback.

Gathering (`gather`) and drawing (`render`) are separate so `--json` reports the same facts.
Imports of Pivot: plan, store, results; never execute, api or cli.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pivot
from pivot.plan import Action, Context, make_plan
from pivot.results import charts, history, html, metrics, params, plots
from pivot.results.revisions import WORKSPACE, Reader, Revision
from pivot.results.values import change_of, format_value, is_number
from pivot.store import git
from pivot.store.runs import GitState, RunRecord

__all__ = ["HISTORY_DEPTH", "Report", "gather", "render", "report_json"]

HISTORY_DEPTH = 10
"""How many commits back from HEAD "best in history" looks."""

_LOWER_IS_BETTER = re.compile(r"loss|err|mae|mse|rmse|perplexity|latency|time|cost", re.I)


@dataclasses.dataclass(frozen=True)
class StageRow:
    name: str
    last_status: str  # in the last recorded run; "none" when it was not part of one
    duration: float
    why: tuple[str, ...]  # the plan's reasons in the last run
    stale: tuple[str, ...]  # why `pivot repro` would run it now (empty: up to date)
    error: str


@dataclasses.dataclass(frozen=True)
class MetricRow:
    path: str
    key: str
    baselines: tuple[Any, ...]  # one per baseline revision (None: absent)
    current: Any
    delta: float | None  # current - first baseline
    best: Any
    best_at: str  # label of the revision holding the best value


@dataclasses.dataclass(frozen=True)
class ParamRow:
    stage: str
    key: str
    baselines: tuple[Any, ...]
    current: Any


@dataclasses.dataclass(frozen=True)
class OutputRow:
    path: str
    stage: str
    size: int | None
    hash: str
    state: str  # new / changed / unchanged / missing (against the first baseline)


@dataclasses.dataclass(frozen=True)
class Report:
    project: str
    generated: str
    git: GitState | None
    pivot_version: str
    python_version: str
    last_run: RunRecord | None
    baselines: tuple[Revision, ...]
    stages: tuple[StageRow, ...]
    upstream: Mapping[str, frozenset[str]]
    params: tuple[ParamRow, ...]
    metrics: tuple[MetricRow, ...]
    plots: tuple[plots.PlotView, ...]
    outputs: tuple[OutputRow, ...]
    warnings: tuple[str, ...]


# --- gathering --------------------------------------------------------------------------------


def _stage_rows(ctx: Context, last: RunRecord | None) -> tuple[StageRow, ...]:
    decided = {step.stage: step for step in make_plan(ctx, ctx.graph.order).steps}
    records = {stage.stage: stage for stage in last.stages} if last else {}
    rows = []
    for name in ctx.graph.order:
        step = decided[name]
        stale = () if step.action is Action.SKIP else tuple(r.summary for r in step.reasons)
        stale = stale or (() if step.action is Action.SKIP else (step.action.value,))
        record = records.get(name)
        rows.append(
            StageRow(
                name,
                record.status if record else "none",
                record.duration if record else 0.0,
                record.reasons if record else (),
                stale,
                record.error if record else "",
            )
        )
    return tuple(rows)


def _param_rows(
    ctx: Context, baselines: Sequence[Revision], current: Revision
) -> tuple[ParamRow, ...]:
    names = list(dict.fromkeys([*ctx.graph.order, *current.locks]))
    tables = [params.table_at(rev, names) for rev in baselines]
    now = params.table_at(current, names)
    rows = []
    for name in names:
        keys = sorted(set(now.get(name) or {}).union(*[set(t.get(name) or {}) for t in tables]))
        for key in keys:
            olds = tuple((t.get(name) or {}).get(key) for t in tables)
            rows.append(ParamRow(name, key, olds, (now.get(name) or {}).get(key)))
    return tuple(rows)


def _values(files: Sequence[metrics.MetricFile]) -> dict[tuple[str, str], Any]:
    return {(f.path, key): value for f in files for key, value in (f.values or {}).items()}


def _best(key: str, candidates: Sequence[tuple[str, Any]]) -> tuple[Any, str]:
    numbers = [(value, label) for label, value in candidates if is_number(value)]
    if not numbers:
        return None, ""
    lower = bool(_LOWER_IS_BETTER.search(key))
    value, label = (min if lower else max)(numbers, key=lambda item: item[0])
    return value, label


def _metric_rows(
    reader: Reader, baselines: Sequence[Revision], current: Revision, depth: int
) -> tuple[MetricRow, ...]:
    outputs = metrics.metric_outputs(reader.ctx.graph)
    now = _values(metrics.read(reader, current, outputs))
    olds = [_values(metrics.read(reader, rev, outputs)) for rev in baselines]
    past: list[tuple[str, dict[tuple[str, str], Any]]] = [(current.label, now)]
    past += [(rev.label, values) for rev, values in zip(baselines, olds)]
    if outputs and reader.repo is not None and reader.has_commits():
        seen = {rev.commit for rev in baselines}
        for commit in git.log(reader.repo, "HEAD", depth):
            if commit.sha not in seen:
                revision = Revision(commit.short, commit.sha, {})
                revision = dataclasses.replace(revision, locks=reader.revision(commit.sha).locks)
                past.append((commit.short, _values(metrics.read(reader, revision, outputs))))
    keys = list(dict.fromkeys([*now, *(k for values in olds for k in values)]))
    rows = []
    for path, key in keys:
        before = tuple(values.get((path, key)) for values in olds)
        value = now.get((path, key))
        best, best_at = _best(key, [(label, values.get((path, key))) for label, values in past])
        delta = change_of(before[0], value) if before else None
        rows.append(MetricRow(path, key, before, value, delta, best, best_at))
    return tuple(rows)


def _size(path: Path) -> int | None:
    try:
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return path.stat().st_size
    except OSError:
        return None


def _output_rows(
    ctx: Context, baseline: Revision | None, current: Revision
) -> tuple[OutputRow, ...]:
    rows = []
    for name in ctx.graph.order:
        entry = current.locks.get(name)
        for out in entry.outs if entry else ():
            old = baseline.out_entry(out.path) if baseline else None
            size = _size(ctx.project.root / out.path)
            state = "new" if old is None else "unchanged" if old.hash == out.hash else "changed"
            rows.append(
                OutputRow(out.path, name, size, out.hash, "missing" if size is None else state)
            )
    return tuple(rows)


def gather(ctx: Context, revs: Sequence[str] = (), *, depth: int = HISTORY_DEPTH) -> Report:
    """Everything the report shows. `revs`: baseline revisions (default HEAD, when there is
    a commit); the first is the one deltas and changed outputs are measured against."""
    reader = Reader(ctx)
    names = list(revs) if revs else (["HEAD"] if reader.has_commits() else [])
    baselines = tuple(reader.revision(name) for name in names)
    current = reader.revision(WORKSPACE)
    newest = history.newest(ctx.project, 1)
    last = newest[0] if newest else None
    plot_list = plots.plot_outputs(ctx.graph)
    views = plots.collect(reader, [*baselines[:1], current], plot_list)
    report = Report(
        project=ctx.project.root.name,
        generated=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        git=git.head_state(ctx.project.root),
        pivot_version=pivot.__version__,
        python_version=platform.python_version(),
        last_run=last,
        baselines=baselines,
        stages=_stage_rows(ctx, last),
        upstream=ctx.graph.upstream,
        params=_param_rows(ctx, baselines, current),
        metrics=_metric_rows(reader, baselines, current, depth),
        plots=tuple(views),
        outputs=_output_rows(ctx, baselines[0] if baselines else None, current),
        warnings=tuple(reader.warnings),
    )
    return report


# --- rendering --------------------------------------------------------------------------------


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
    better = (delta < 0) if _LOWER_IS_BETTER.search(key) else (delta > 0)
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


def report_json(report: Report, page: Path | None) -> dict[str, Any]:
    """The facts of the report (docs/results.md describes the shape)."""
    return {
        "page": str(page) if page else None,
        "git": dataclasses.asdict(report.git) if report.git else None,
        "baselines": [{"rev": r.name, "commit": r.commit} for r in report.baselines],
        "last_run": report.last_run.id if report.last_run else None,
        "stages": [
            {
                "stage": r.name,
                "last_status": r.last_status,
                "duration": r.duration,
                "why": list(r.why),
                "stale": list(r.stale),
            }
            for r in report.stages
        ],
        "metrics": [
            {
                "path": r.path,
                "key": r.key,
                "baselines": list(r.baselines),
                "current": r.current,
                "change": r.delta,
                "best": r.best,
                "best_at": r.best_at or None,
            }
            for r in report.metrics
        ],
        "params": [
            {"stage": r.stage, "param": r.key, "baselines": list(r.baselines), "current": r.current}
            for r in report.params
        ],
        "plots": [v.plot.path for v in report.plots],
        "outputs": [dataclasses.asdict(r) for r in report.outputs],
        "failures": [
            {"stage": r.name, "error": r.error} for r in report.stages if r.last_status == "failed"
        ],
    }
