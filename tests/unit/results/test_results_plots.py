"""Drawing plots into HTML (pivot.results.plots): images, data charts, confusion matrices."""

from __future__ import annotations

import base64
import json
import re

from pivot.results.plots import PlotOutput, PlotView, render_plot
from pivot.results.revisions import Revision

OLD = Revision("HEAD", "a" * 40, {})
NEW = Revision("workspace", None, {})


def test_image_versions_are_embedded_side_by_side() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    view = PlotView(PlotOutput("plots/a.png", "train", None, None, None), ((OLD, png), (NEW, None)))
    page = render_plot(view)
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert "HEAD (aaaaaaaa)" in page and "— (not at this revision)" in page


def test_data_versions_overlay_one_series_per_revision() -> None:
    old = json.dumps([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.25}]).encode()
    new = b"step,loss\n1,0.4\n2,0.2\n3,0.1\n"
    plot = PlotOutput("plots/loss.csv", "train", "step", "loss", None)
    page = render_plot(PlotView(plot, ((OLD, b"\xff\xfe not text"), (NEW, new))))
    assert "HEAD (aaaaaaaa): cannot read plots/loss.csv" in page  # shown, not raised
    assert page.count("<polyline") == 1 and "(3 rows)" in page
    json_plot = PlotOutput("plots/loss.json", "train", "step", "loss", "scatter")
    page = render_plot(PlotView(json_plot, ((OLD, old), (NEW, old))))
    assert page.count("<polyline") == 0 and len(re.findall("<circle", page)) == 4


def test_categorical_x_and_bars() -> None:
    data = b"name,count\nalba,3\nlutea,5\n"
    plot = PlotOutput("plots/c.csv", "eval", "name", "count", "bar")
    page = render_plot(PlotView(plot, ((NEW, data),)))
    assert ">alba</text>" in page and ">lutea</text>" in page and page.count("<rect") >= 2


def test_confusion_matrix_counts_actual_against_predicted() -> None:
    rows = [
        {"actual": "a", "predicted": "a"},
        {"actual": "a", "predicted": "b"},
        {"actual": "b", "predicted": "b"},
        {"actual": "b", "predicted": "b"},
    ]
    plot = PlotOutput("plots/confusion.json", "eval", "actual", "predicted", "confusion")
    page = render_plot(PlotView(plot, ((OLD, None), (NEW, json.dumps(rows).encode()))))
    cells = re.findall(r'<td class="num"[^>]*>(\d+)</td>', page)
    assert cells == ["1", "1", "0", "2"]
    assert "— (not at this revision)" in page
    normalized = PlotOutput(
        "plots/confusion.json", "eval", "actual", "predicted", "confusion_normalized"
    )
    page = render_plot(PlotView(normalized, ((NEW, json.dumps(rows).encode()),)))
    assert re.findall(r'<td class="num"[^>]*>([\d.]+)</td>', page) == [
        "0.50",
        "0.50",
        "0.00",
        "1.00",
    ]
