"""Figures for the example, built with matplotlib's object API (no pyplot, no display needed).

Each function returns a `Figure`; the stage returns it and Pivot's `MatplotlibFigure()` writer
saves and closes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

__all__ = ["confusion_heatmap", "loss_curve"]


def loss_curve(losses: Sequence[float]) -> Figure:
    figure = Figure(figsize=(5, 3.5))
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses)
    axes.set(xlabel="epoch", ylabel="training loss", title="Softmax regression: training loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def confusion_heatmap(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> Figure:
    figure = Figure(figsize=(4.5, 4))
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    ticks = range(len(classes))
    axes.set_xticks(ticks, labels=list(classes))
    axes.set_yticks(ticks, labels=list(classes))
    axes.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test set)")
    largest = max(max(counts) for counts in matrix)
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            colour = "white" if count > largest / 2 else "black"
            axes.text(column, row, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    return figure
