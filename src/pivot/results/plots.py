"""`pivot plots show/diff`: every `Plot` output at one or more revisions, drawn into one
self-contained HTML page. Images (PNG, SVG, JPEG, GIF, PDF) are embedded as data URIs; data
plots (CSV, TSV, JSON, JSONL, YAML) are drawn as SVG from their `x`/`y`/`template`, one series
per revision (overlaid), with the numbers in a table below; `template="confusion"` (or
`confusion_normalized`) draws a confusion matrix of actual `x` against predicted `y` per revision.

Imports of Pivot: workspace, graph, spec, outputs, fs, results; never execute, api or cli.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pivot import fs, outputs
from pivot.errors import UnknownStageError
from pivot.graph import Graph
from pivot.results import charts, html
from pivot.results.revisions import Reader, Revision
from pivot.results.values import csv_records, is_number
from pivot.spec import OutKind
from pivot.workspace import Context

__all__ = [
    "CONFUSION_TEMPLATES",
    "IMAGE_TYPES",
    "PlotOutput",
    "PlotView",
    "collect",
    "plot_outputs",
    "plots_json",
    "render_page",
    "render_plot",
    "render_plots",
    "revisions_of",
    "write_page",
]

IMAGE_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".pdf": "application/pdf",
}


@dataclasses.dataclass(frozen=True)
class PlotOutput:
    """A declared plot: its path, stage and the marker's x, y and template."""

    path: str
    stage: str
    x: str | None
    y: str | None
    template: str | None

    @property
    def is_image(self) -> bool:
        return Path(self.path).suffix.lower() in IMAGE_TYPES


@dataclasses.dataclass(frozen=True)
class PlotView:
    """One plot and its content at each revision (None where it does not exist there)."""

    plot: PlotOutput
    versions: tuple[tuple[Revision, bytes | None], ...]


def plot_outputs(graph: Graph, targets: Sequence[str] = ()) -> list[PlotOutput]:
    """Every Plot output in pipeline order; `targets` (stages or plot paths) narrow it down."""
    found: list[PlotOutput] = []
    for name in graph.order:
        for out in graph.stages[name].outs:
            if out.kind is not OutKind.PLOT:
                continue
            marker = out.marker
            x, y, template = (
                (marker.x, marker.y, marker.template)
                if isinstance(marker, outputs.Plot)
                else (None, None, None)
            )
            found.extend(PlotOutput(path, name, x, y, template) for path in out.paths)
    if not targets:
        return found
    chosen = [plot for plot in found if plot.path in targets or plot.stage in targets]
    unknown = [t for t in targets if not any(t in (p.path, p.stage) for p in found)]
    if unknown:
        raise UnknownStageError(
            f"'{unknown[0]}' is neither a stage with a Plot output nor a plot file (plot files: "
            f"{', '.join(p.path for p in found) or 'none'})"
        )
    return chosen


def collect(
    reader: Reader, revisions: Sequence[Revision], plots: Sequence[PlotOutput]
) -> list[PlotView]:
    """The content of every plot at every revision (one git batch per revision)."""
    contents = [reader.files(revision, [p.path for p in plots]) for revision in revisions]
    return [
        PlotView(plot, tuple((rev, found[plot.path]) for rev, found in zip(revisions, contents)))
        for plot in plots
    ]


# --- data -------------------------------------------------------------------------------------


def _rows(path: str, data: bytes) -> list[dict[str, Any]]:
    """Records from a data plot file: a list of objects, or the first list found in an object."""
    text = data.decode("utf-8")
    lower = path.lower()
    if lower.endswith((".csv", ".tsv")):
        return csv_records(text, tabs=lower.endswith(".tsv"))
    if lower.endswith(".jsonl"):
        document: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
    elif lower.endswith((".yaml", ".yml")):
        import yaml

        document = yaml.safe_load(text)
    else:
        document = json.loads(text)
    if isinstance(document, dict):
        lists = [value for value in document.values() if isinstance(value, list)]
        if lists:
            document = lists[0]
        elif all(isinstance(v, list | int | float) for v in document.values()):
            document = [document]
    if not isinstance(document, list):
        raise ValueError("expected a list of records")
    return [row if isinstance(row, dict) else {"value": row} for row in document]


def _columns(plot: PlotOutput, rows: list[dict[str, Any]]) -> tuple[str | None, list[str]]:
    """(x column or None for the row index, y columns): the marker's, else numeric columns."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    x = plot.x if plot.x in keys else None
    if plot.y is not None:
        return x, [plot.y] if plot.y in keys else []
    numeric = [k for k in keys if k != x and all(is_number(r.get(k)) for r in rows if k in r)]
    return x, numeric[-1:] if x is None and len(numeric) > 1 and plot.x is None else numeric


# --- rendering --------------------------------------------------------------------------------


def _image(plot: PlotOutput, data: bytes) -> str:
    mime = IMAGE_TYPES[Path(plot.path).suffix.lower()]
    uri = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    if mime == "application/pdf":
        return f'<object data="{uri}" type="{mime}" width="100%" height="320"><a href="{uri}" download>PDF</a></object>'
    return f'<img src="{uri}" alt="{html.escape(plot.path)}" loading="lazy">'


def _image_versions(view: PlotView) -> str:
    figures = []
    for revision, data in view.versions:
        content = (
            _image(view.plot, data)
            if data is not None
            else '<p class="empty">— (not at this revision)</p>'
        )
        figures.append(
            f"<figure><figcaption>{html.escape(revision.label)}</figcaption>{content}</figure>"
        )
    return f'<div class="versions">{"".join(figures)}</div>'


def _series(
    plot: PlotOutput, label: str, rows: list[dict[str, Any]], x_names: list[str]
) -> tuple[list[str], list[charts.Series]]:
    """(y columns, one series per y column) of one revision's rows. A non-numeric x column is
    categorical: its values are collected in `x_names` (shared by every revision)."""
    x, ys = _columns(plot, rows)
    found = []
    for y in ys:
        points: list[tuple[Any, Any]] = [
            (row.get(x) if x else index, row.get(y)) for index, row in enumerate(rows)
        ]
        if x and not all(is_number(px) for px, _ in points):
            x_names.extend(dict.fromkeys(str(px) for px, _ in points if str(px) not in x_names))
            points = [(x_names.index(str(px)), py) for px, py in points]
        good = [(float(px), float(py)) for px, py in points if is_number(px) and is_number(py)]
        name = label if len(ys) == 1 else f"{label}: {y}"
        found.append(charts.Series(name, tuple(p[0] for p in good), tuple(p[1] for p in good)))
    return ys, found


def _data_table(label: str, rows: list[dict[str, Any]]) -> str:
    shown = rows[:200]
    keys = list(dict.fromkeys(k for row in shown for k in row))
    cells = [[html.escape(str(row.get(k, ""))) for k in keys] for row in shown]
    more = f"<p class='muted'>first 200 of {len(rows)} rows</p>" if len(rows) > 200 else ""
    return (
        f"<details><summary class='muted'>data at {html.escape(label)} ({len(rows)} rows)"
        f"</summary>{html.table(keys, cells)}{more}</details>"
    )


def _loaded(view: PlotView) -> list[tuple[Revision, list[dict[str, Any]] | None, str]]:
    """Each revision's records, or None with the reason they are not there."""
    found: list[tuple[Revision, list[dict[str, Any]] | None, str]] = []
    for revision, data in view.versions:
        if data is None:
            found.append((revision, None, f"{revision.label}: — (not at this revision)"))
            continue
        try:
            found.append((revision, _rows(view.plot.path, data), ""))
        except (ValueError, UnicodeDecodeError) as error:
            problem = f"{revision.label}: cannot read {view.plot.path}: {error}"
            found.append((revision, None, problem))
    return found


def _data_versions(view: PlotView) -> str:
    """One chart with a series per revision (and y column), a data table per revision."""
    plot = view.plot
    series: list[charts.Series] = []
    parts: list[str] = []
    x_names: list[str] = []
    y_names: list[str] = []
    for revision, rows, problem in _loaded(view):
        if rows is None:
            parts.append(f'<p class="empty">{html.escape(problem)}</p>')
            continue
        ys, found = _series(plot, revision.label, rows, x_names)
        y_names.extend(y for y in ys if y not in y_names)
        series.extend(found)
        parts.append(_data_table(revision.label, rows))
    kind = plot.template if plot.template in ("scatter", "bar") else "linear"
    y_label = plot.y or ", ".join(y_names)
    drawn = charts.chart(
        series, x_label=plot.x or "step", y_label=y_label, kind=kind, x_names=x_names
    )
    return drawn + "".join(parts)


CONFUSION_TEMPLATES = ("confusion", "confusion_normalized")


def _confusion_table(plot: PlotOutput, rows: list[dict[str, Any]]) -> str:
    """A confusion matrix from records of (actual `x`, predicted `y`): rows actual, columns
    predicted, cells shaded by count (by share of the row for `confusion_normalized`)."""
    actual, predicted = plot.x or "actual", plot.y or "predicted"
    pairs = [(str(row.get(actual)), str(row.get(predicted))) for row in rows]
    classes = sorted({name for pair in pairs for name in pair})
    counts = {(a, p): 0 for a in classes for p in classes}
    for pair in pairs:
        counts[pair] += 1
    normalized = plot.template == "confusion_normalized"
    head = "".join(f"<th>{html.escape(name)}</th>" for name in classes)
    body = []
    for a in classes:
        total = sum(counts[(a, p)] for p in classes) or 1
        cells = []
        for p in classes:
            share = counts[(a, p)] / total
            text = f"{share:.2f}" if normalized else str(counts[(a, p)])
            color = f"rgba(59,91,219,{0.08 + 0.85 * share:.2f})"
            ink = "#fff" if share > 0.5 else "#1f2933"
            cells.append(f'<td class="num" style="background:{color};color:{ink}">{text}</td>')
        body.append(f"<tr><th>{html.escape(a)}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="confusion"><thead><tr><th>{html.escape(actual)} \\ '
        f"{html.escape(predicted)}</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _confusion_versions(view: PlotView) -> str:
    figures = []
    for revision, rows, problem in _loaded(view):
        content = (
            _confusion_table(view.plot, rows)
            if rows is not None
            else f'<p class="empty">{html.escape(problem)}</p>'
        )
        caption = html.escape(revision.label)
        figures.append(f"<figure><figcaption>{caption}</figcaption>{content}</figure>")
    return f'<div class="versions">{"".join(figures)}</div>'


def render_plot(view: PlotView) -> str:
    """One plot card: side-by-side images, or one chart overlaying every revision's data."""
    if view.plot.is_image:
        body = _image_versions(view)
    elif view.plot.template in CONFUSION_TEMPLATES:
        body = _confusion_versions(view)
    else:
        body = _data_versions(view)
    title = f"{html.escape(view.plot.path)} <span>· {html.escape(view.plot.stage)}</span>"
    return f'<div class="plot searchable" data-search="{html.escape(view.plot.path)} {html.escape(view.plot.stage)}"><h3>{title}</h3>{body}</div>'


def render_plots(views: Sequence[PlotView]) -> str:
    if not views:
        return '<p class="empty">No Plot outputs are declared in this pipeline.</p>'
    return f'<div class="plots">{"".join(render_plot(view) for view in views)}</div>'


def render_page(ctx: Context, views: Sequence[PlotView], revisions: Sequence[Revision]) -> str:
    labels = ", ".join(revision.label for revision in revisions)
    section = html.Section("plots", "Plots", render_plots(views), count=str(len(views)))
    meta = [("project", str(ctx.project.root)), ("revisions", labels)]
    return html.page("Pivot plots", ctx.project.root.name, meta, "", [section])


def write_page(path: Path, text: str) -> Path:
    """Write a page atomically; returns its absolute path."""
    target = Path(path).resolve()
    fs.atomic_write_text(target, text)
    return target


def plots_json(views: Sequence[PlotView], page: Path | None) -> dict[str, Any]:
    return {
        "page": str(page) if page else None,
        "plots": [
            {
                "path": v.plot.path,
                "stage": v.plot.stage,
                "kind": "image" if v.plot.is_image else "data",
                "x": v.plot.x,
                "y": v.plot.y,
                "template": v.plot.template,
                "revisions": [
                    {"rev": rev.name, "commit": rev.commit, "present": data is not None}
                    for rev, data in v.versions
                ],
            }
            for v in views
        ],
    }


def revisions_of(reader: Reader, names: Sequence[str]) -> list[Revision]:
    return [reader.revision(name) for name in names]
