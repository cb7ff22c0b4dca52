"""`pivot report`: one self-contained HTML page of the project's state: header (commit, dirty,
versions, last run), the DAG coloured by the last run, each stage's status and why it ran,
params and metrics against baseline revisions (with delta and the best value in history),
every plot, the outputs, and failures with their traceback.

This module gathers the facts (`gather` -> `Report`, and `report_json`); `report_page` draws
them, so `--json` reports exactly what the page shows. Imports of Pivot: plan, workspace, store, results;
never execute, api or cli.
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
from pivot.plan import Action, make_plan
from pivot.results import history, metrics, params, plots
from pivot.results.revisions import WORKSPACE, Reader, Revision
from pivot.results.values import change_of, is_number
from pivot.store import git
from pivot.store.runs import GitState, RunRecord
from pivot.workspace import Context

__all__ = [
    "HISTORY_DEPTH",
    "LOWER_IS_BETTER",
    "MetricRow",
    "OutputRow",
    "ParamRow",
    "Report",
    "StageRow",
    "gather",
    "report_json",
]

HISTORY_DEPTH = 10
"""How many commits back from HEAD "best in history" looks."""

LOWER_IS_BETTER = re.compile(r"loss|err|mae|mse|rmse|perplexity|latency|time|cost", re.I)
"""Metric keys for which a lower value is better (others: higher is better)."""


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
    lower = bool(LOWER_IS_BETTER.search(key))
    value, label = (min if lower else max)(numbers, key=lambda item: item[0])
    return value, label


def _metrics_at(
    reader: Reader, commit: git.Commit, outputs: Mapping[str, str]
) -> list[metrics.MetricFile]:
    """The metric files at an older commit: from git alone when it has them all (one batch);
    its lock files are read only to find the others in the cache."""
    files = metrics.read(reader, Revision(commit.short, commit.sha, {}), outputs)
    if all(f.values is not None for f in files):
        return files
    locks = reader.revision(commit.sha).locks
    return metrics.read(reader, Revision(commit.short, commit.sha, locks), outputs)


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
                past.append((commit.short, _values(_metrics_at(reader, commit, outputs))))
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
