"""SVG drawn in Python, so pages need no JavaScript library: line/scatter/bar charts of plot
data, and the stage DAG laid out in layers. Imports of Pivot: results.html.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from pivot.results.html import escape

__all__ = ["PALETTE", "STATUS_COLORS", "Series", "chart", "dag_svg", "layers", "rows_of"]

PALETTE = ("#3b5bdb", "#e8590c", "#2f9e44", "#ae3ec9", "#1098ad", "#f59f00", "#c2255c", "#5c940d")

STATUS_COLORS = {
    "ran": "#2f9e44",
    "restored": "#1098ad",
    "skipped": "#adb5bd",
    "failed": "#e03131",
    "blocked": "#f08c00",
    "interrupted": "#ae3ec9",
    "none": "#dee2e6",
}


@dataclasses.dataclass(frozen=True)
class Series:
    name: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round numbers spanning [low, high]."""
    if high == low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 2.5, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def chart(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    kind: str = "linear",
    x_names: Sequence[str] = (),
) -> str:
    """A chart of `series` (one colour each, with a legend). `kind`: linear, scatter or bar;
    `x_names` label integer x positions of a categorical axis."""
    width, height = 560, 300
    left, right, top, bottom = 58, 16, 14 + 18 * ((len(series) + 2) // 3), 44
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys]
    if not xs:
        return '<p class="empty">No numeric data to draw.</p>'
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(min(ys), 0.0) if kind == "bar" else min(ys), max(ys)
    if y_low == y_high:
        y_low, y_high = y_low - 1, y_high + 1
    pad = (y_high - y_low) * 0.05
    y_low, y_high = y_low - (0 if kind == "bar" and y_low == 0 else pad), y_high + pad
    if kind == "bar":
        x_low, x_high = x_low - 0.6, x_high + 0.6
    elif x_low == x_high:
        x_low, x_high = x_low - 1, x_high + 1
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y_low) / (y_high - y_low)) * plot_h

    out = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(y_label)} by {escape(x_label)}">'
    ]
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#edf0f3"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#616e7c">{_label(tick)}</text>'
        )
    x_ticks = [float(i) for i in range(len(x_names))] if x_names else _ticks(x_low, x_high, 6)
    for tick in x_ticks:
        if not x_low <= tick <= x_high:
            continue
        text = x_names[int(tick)] if x_names else _label(tick)
        out.append(
            f'<text x="{sx(tick):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" fill="#616e7c">{escape(text[:14])}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9aa5b1"/>'
    )
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#9aa5b1"/>')
    out.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" font-size="12" text-anchor="middle" fill="#3e4c59">{escape(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" font-size="12" text-anchor="middle" fill="#3e4c59">{escape(y_label)}</text>'
    )
    bar_w = plot_w / max(1, (x_high - x_low)) * 0.8 / max(1, len(series))
    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        points = list(zip(item.xs, item.ys))
        if kind == "bar":
            for x, y in points:
                x0 = sx(x) - bar_w * len(series) / 2 + index * bar_w
                y0, y1 = sorted((sy(y), sy(max(y_low, 0))))
                out.append(
                    f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" height="{max(y1 - y0, 0.5):.1f}" fill="{color}"><title>{escape(item.name)}: {_label(y)}</title></rect>'
                )
        else:
            if kind != "scatter" and len(points) > 1:
                path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
                )
            if kind == "scatter" or len(points) <= 60:
                for x, y in points:
                    out.append(
                        f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{3 if kind == "scatter" else 2.5}" fill="{color}"><title>{escape(item.name)}: ({_label(x)}, {_label(y)})</title></circle>'
                    )
        lx, ly = left + (index % 3) * (plot_w / 3), 12 + 18 * (index // 3)
        out.append(
            f'<rect x="{lx:.1f}" y="{ly - 9}" width="12" height="12" rx="2" fill="{color}"/>'
        )
        out.append(
            f'<text x="{lx + 17:.1f}" y="{ly + 1}" font-size="12" fill="#1f2933">{escape(item.name[:40])}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def layers(order: Sequence[str], upstream: Mapping[str, frozenset[str]]) -> dict[str, int]:
    """Each node's column: one more than its deepest upstream node (sources at 0)."""
    level: dict[str, int] = {}
    for name in order:
        level[name] = 1 + max((level[up] for up in upstream[name] if up in level), default=-1)
    return level


def _place(column: Sequence[str], wanted: Mapping[str, float], rows: dict[str, float]) -> None:
    """Put `column`'s nodes in the order of their wanted rows, each at least one below the last."""
    last = -1.0
    for name in sorted(column, key=lambda node: wanted[node]):
        rows[name] = last = max(wanted[name], last + 1)


def rows_of(
    order: Sequence[str], upstream: Mapping[str, frozenset[str]], level: Mapping[str, int]
) -> dict[str, float]:
    """A row for each node: near the mean row of its neighbours (barycentres, a pass forward
    over the layers, one back, one forward), no two nodes of a layer closer than one row."""
    downstream: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for up in upstream[name]:
            if up in downstream:
                downstream[up].append(name)
    columns: dict[int, list[str]] = {}
    for name in order:
        columns.setdefault(level[name], []).append(name)
    rows: dict[str, float] = {}

    def mean(names: Sequence[str], default: float) -> float:
        known = [rows[n] for n in names if n in rows]
        return sum(known) / len(known) if known else default

    for neighbours, sequence in (
        (upstream, sorted(columns)),
        (downstream, sorted(columns, reverse=True)),
        (upstream, sorted(columns)),
    ):
        for index in sequence:
            column = columns[index]
            wanted = {
                name: mean(list(neighbours[name]), rows.get(name, float(i)))
                for i, name in enumerate(column)
            }
            _place(column, wanted, rows)
    low = min(rows.values(), default=0.0)
    return {name: row - low for name, row in rows.items()}


def dag_svg(
    order: Sequence[str],
    upstream: Mapping[str, frozenset[str]],
    colors: Mapping[str, str],
    titles: Mapping[str, str],
    stale: frozenset[str],
) -> str:
    """The DAG left to right in layers; nodes filled with `colors`, stale ones with a dashed
    outline, `titles` as tooltips."""
    level = layers(order, upstream)
    row = rows_of(order, upstream, level)
    box_w, box_h, gap_x, gap_y, margin = 150, 30, 60, 14, 12
    width = margin * 2 + (max(level.values(), default=-1) + 1) * (box_w + gap_x) - gap_x
    height = margin * 2 + (max(row.values(), default=-1) + 1) * (box_h + gap_y) - gap_y

    def x_of(name: str) -> float:
        return margin + level[name] * (box_w + gap_x)

    def y_of(name: str) -> float:
        return margin + row[name] * (box_h + gap_y)

    out = [
        f'<svg width="{max(width, 0)}" height="{max(height, 0)}" viewBox="0 0 {max(width, 0)} {max(height, 0)}" role="img" aria-label="Pipeline graph">'
    ]
    out.append(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#9aa5b1"/></marker></defs>'
    )
    for name in order:
        for up in sorted(upstream[name]):
            if up not in level:
                continue
            x1, y1 = x_of(up) + box_w, y_of(up) + box_h / 2
            x2, y2 = x_of(name), y_of(name) + box_h / 2
            mid = (x1 + x2) / 2
            out.append(
                f'<path d="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2 - 2:.1f},{y2:.1f}" fill="none" stroke="#9aa5b1" stroke-width="1.3" marker-end="url(#arrow)"/>'
            )
    for name in order:
        color = colors.get(name, STATUS_COLORS["none"])
        dark = color not in (STATUS_COLORS["none"], STATUS_COLORS["skipped"])
        dash = ' stroke-dasharray="5 3" stroke="#d9480f"' if name in stale else ' stroke="#868e96"'
        label = name if len(name) <= 20 else name[:19] + "…"
        out.append(
            f'<g class="node searchable" data-search="{escape(name)}"><title>{escape(titles.get(name, name))}</title>'
            f'<rect x="{x_of(name):.1f}" y="{y_of(name):.1f}" width="{box_w}" height="{box_h}" rx="6" fill="{color}"{dash}/>'
            f'<text x="{x_of(name) + box_w / 2:.1f}" y="{y_of(name) + box_h / 2 + 4:.1f}" font-size="12" text-anchor="middle" fill="{"#fff" if dark else "#1f2933"}">{escape(label)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)
