"""Classification metrics from true and predicted labels: accuracy, confusion, per-class scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["accuracy", "class_report", "confusion_matrix", "macro_f1"]


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(np.mean([a == b for a, b in zip(truth, predicted, strict=True)]))


def confusion_matrix(
    truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]
) -> list[list[int]]:
    """Rows are true classes, columns predicted classes, in the order of `classes`."""
    index = {name: position for position, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for true_name, predicted_name in zip(truth, predicted, strict=True):
        matrix[index[true_name], index[predicted_name]] += 1
    return matrix.tolist()


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def class_report(matrix: list[list[int]], classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for each class."""
    counts = np.array(matrix)
    report = {}
    for position, name in enumerate(classes):
        hits = int(counts[position, position])
        precision = _ratio(hits, int(counts[:, position].sum()))
        recall = _ratio(hits, int(counts[position].sum()))
        f1 = round(2 * precision * recall / (precision + recall), 4) if hits else 0.0
        support = int(counts[position].sum())
        report[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return report


def macro_f1(report: dict[str, dict[str, float]]) -> float:
    return round(float(np.mean([scores["f1"] for scores in report.values()])), 4)
