"""The example pipeline: flower measurements -> clean -> split -> train -> evaluate.

    data/raw/flowers.csv --clean--> data/clean.csv --split--> data/train.csv --train--> model/model.json
                                                             data/test.csv ------------+--evaluate--> metrics, reports, plots

Every file a stage reads or writes is declared in its annotations (paths relative to this
directory, the project root); the stage bodies only compute. Settings live in `StageParams`.
The helpers come from this project's own package, `mlkit/`.
"""

from typing import Annotated, Any, TypedDict

import pandas as pd
from matplotlib.figure import Figure
from mlkit import data, evaluation, figures, model

from pivot.loaders import CSV, JSON, JSONL, MatplotlibFigure
from pivot.outputs import Dep, DirectoryOut, IncrementalOut, Metric, Out, Plot
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


# --- clean: drop flawed rows ----------------------------------------------------------------


class CleanParams(StageParams):
    max_abs_zscore: float = 4.0


def clean(
    params: CleanParams,
    raw: Annotated[pd.DataFrame, Dep("data/raw/flowers.csv", CSV())],
) -> Annotated[pd.DataFrame, Out("data/clean.csv", CSV())]:
    return data.clean_measurements(raw, features=FEATURES, max_abs_zscore=params.max_abs_zscore)


# --- split: a fixed-length tuple output (two files) -----------------------------------------


class SplitParams(StageParams):
    test_fraction: float = 0.25
    seed: int = 4


def split(
    params: SplitParams,
    table: Annotated[pd.DataFrame, Dep("data/clean.csv", CSV())],
) -> Annotated[tuple[pd.DataFrame, pd.DataFrame], Out(("data/train.csv", "data/test.csv"), CSV())]:
    return data.stratified_split(
        table, label="species", test_fraction=params.test_fraction, seed=params.seed
    )


# --- train: a model, a metric and a plot ----------------------------------------------------


class TrainParams(StageParams):
    features: list[str] = FEATURES
    learning_rate: float = 0.5
    epochs: int = 200
    l2: float = 0.001


class TrainOutputs(TypedDict):
    model: Annotated[dict[str, Any], Out("model/model.json", JSON())]
    metrics: Annotated[dict[str, float], Metric("metrics/train.json")]
    loss_curve: Annotated[Figure, Plot("plots/loss.png", MatplotlibFigure(dpi=100))]


def train(
    params: TrainParams,
    train_set: Annotated[pd.DataFrame, Dep("data/train.csv", CSV())],
) -> TrainOutputs:
    fitted = model.fit(
        train_set,
        features=params.features,
        label="species",
        learning_rate=params.learning_rate,
        epochs=params.epochs,
        l2=params.l2,
    )
    truth, predicted = train_set["species"].tolist(), fitted.model.predict(train_set)
    return {
        "model": fitted.model.to_dict(),
        "metrics": {
            "final_loss": round(fitted.losses[-1], 4),
            "train_accuracy": round(evaluation.accuracy(truth, predicted), 4),
            "rows": len(train_set),
        },
        "loss_curve": figures.loss_curve(fitted.losses),
    }


# --- evaluate: metrics, one report per class, a plot, and a growing run history -------------


class EvaluateOutputs(TypedDict):
    metrics: Annotated[dict[str, float], Metric("metrics/eval.json")]
    per_class: Annotated[dict[str, dict[str, float]], DirectoryOut("reports/per_class/", JSON())]
    confusion: Annotated[Figure, Plot("plots/confusion.png", MatplotlibFigure(dpi=100))]
    history: Annotated[list[dict[str, Any]], IncrementalOut("history/evaluations.jsonl", JSONL())]


def evaluate(
    fitted: Annotated[dict[str, Any], Dep("model/model.json", JSON())],
    test_set: Annotated[pd.DataFrame, Dep("data/test.csv", CSV())],
    history: Annotated[list[dict[str, Any]], IncrementalOut("history/evaluations.jsonl", JSONL())],
) -> EvaluateOutputs:
    classifier = model.SoftmaxModel.from_dict(fitted)
    truth = test_set["species"].tolist()
    predicted = classifier.predict(test_set)
    matrix = evaluation.confusion_matrix(truth, predicted, classifier.classes)
    report = evaluation.class_report(matrix, classifier.classes)
    metrics = {
        "accuracy": round(evaluation.accuracy(truth, predicted), 4),
        "macro_f1": evaluation.macro_f1(report),
        "test_rows": len(test_set),
    }
    return {
        "metrics": metrics,
        "per_class": {f"{name}.json": scores for name, scores in report.items()},
        "confusion": figures.confusion_heatmap(matrix, classifier.classes),
        "history": [*history, {"evaluation": len(history) + 1, **metrics}],
    }


pipeline = Pipeline("flowers")
pipeline.register(clean, params=CleanParams(max_abs_zscore=4.0))
pipeline.register(split)
pipeline.register(train, params=TrainParams(epochs=200))
pipeline.register(evaluate)
