"""Multinomial logistic (softmax) regression with numpy, fitted by full-batch gradient descent.

A model is a frozen dataclass that converts to and from a JSON-ready dict, so a stage can return
it through the `JSON()` loader. Deterministic: same data and settings give the same weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Fit", "SoftmaxModel", "fit"]


@dataclasses.dataclass(frozen=True)
class SoftmaxModel:
    """Standardisation constants, weights and class names: everything needed to predict."""

    features: tuple[str, ...]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[tuple[float, ...], ...]  # one row per feature, one column per class
    bias: tuple[float, ...]

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        inputs = (frame[list(self.features)].to_numpy(float) - self.mean) / np.array(self.scale)
        return _softmax(inputs @ np.array(self.weights) + np.array(self.bias))

    def predict(self, frame: pd.DataFrame) -> list[str]:
        best = self.probabilities(frame).argmax(axis=1)
        return [self.classes[index] for index in best]

    def to_dict(self) -> dict[str, Any]:
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SoftmaxModel:
        return cls(
            features=tuple(data["features"]),
            classes=tuple(data["classes"]),
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            weights=tuple(tuple(row) for row in data["weights"]),
            bias=tuple(data["bias"]),
        )


@dataclasses.dataclass(frozen=True)
class Fit:
    """A fitted model and the training loss after each epoch."""

    model: SoftmaxModel
    losses: tuple[float, ...]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def fit(
    frame: pd.DataFrame,
    *,
    features: Sequence[str],
    label: str,
    learning_rate: float,
    epochs: int,
    l2: float,
) -> Fit:
    """Fit on `frame`; features are standardised with the training mean and deviation."""
    classes = tuple(sorted(frame[label].unique()))
    raw = frame[list(features)].to_numpy(float)
    mean, scale = raw.mean(axis=0), raw.std(axis=0) + 1e-12
    inputs = (raw - mean) / scale
    targets = np.eye(len(classes))[[classes.index(name) for name in frame[label]]]
    weights = np.zeros((inputs.shape[1], len(classes)))
    bias = np.zeros(len(classes))
    losses = []
    for _ in range(epochs):
        probabilities = _softmax(inputs @ weights + bias)
        cross_entropy = -np.mean(np.sum(targets * np.log(probabilities + 1e-12), axis=1))
        losses.append(float(cross_entropy + 0.5 * l2 * np.sum(weights**2)))
        error = probabilities - targets
        weights -= learning_rate * (inputs.T @ error / len(inputs) + l2 * weights)
        bias -= learning_rate * error.mean(axis=0)
    model = SoftmaxModel(
        features=tuple(features),
        classes=classes,
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        weights=tuple(tuple(row) for row in weights.tolist()),
        bias=tuple(bias.tolist()),
    )
    return Fit(model=model, losses=tuple(losses))
