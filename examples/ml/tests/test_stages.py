"""Unit tests for the example's stages: call the functions directly with in-memory data.

Annotations are not involved when a stage is called as a plain function, so no files, no
`.pivot/` and no Pivot run are needed. Run from the project root: `python -m pytest tests`.
"""

import pandas as pd
import pipeline
from mlkit import model


def _table() -> pd.DataFrame:
    rows = []
    for index in range(30):
        species = ("alba", "rubra", "lutea")[index % 3]
        size = {"alba": 1.0, "rubra": 4.0, "lutea": 6.0}[species] + (index % 5) * 0.1
        rows.append(
            {
                "sample_id": f"s{index:03d}",
                "species": species,
                "sepal_length": 5.0 + size / 10,
                "sepal_width": 3.0,
                "petal_length": size,
                "petal_width": size / 3,
            }
        )
    return pd.DataFrame(rows)


def test_clean_drops_missing_duplicated_and_impossible_rows() -> None:
    table = _table()
    flawed = pd.concat([table, table.iloc[[0]]], ignore_index=True)  # a duplicated sample
    flawed.loc[1, "petal_width"] = None
    flawed.loc[2, "sepal_width"] = -1.0
    cleaned = pipeline.clean(pipeline.CleanParams(), flawed)
    assert len(cleaned) == len(table) - 2
    assert cleaned["sample_id"].is_unique


def test_split_keeps_every_class_in_both_sets() -> None:
    train_set, test_set = pipeline.split(pipeline.SplitParams(test_fraction=0.2), _table())
    assert len(train_set) + len(test_set) == 30
    assert set(test_set["species"]) == set(train_set["species"]) == {"alba", "rubra", "lutea"}


def test_train_then_evaluate_separates_easy_classes() -> None:
    table = _table()
    trained = pipeline.train(pipeline.TrainParams(epochs=100), table)
    assert trained["metrics"]["train_accuracy"] == 1.0
    result = pipeline.evaluate(trained["model"], table, [{"evaluation": 1}])
    assert result["metrics"]["accuracy"] == 1.0
    assert sorted(result["per_class"]) == ["alba.json", "lutea.json", "rubra.json"]
    assert [entry["evaluation"] for entry in result["history"]] == [1, 2]


def test_model_round_trips_through_a_dict() -> None:
    fitted = model.fit(
        _table(), features=pipeline.FEATURES, label="species", learning_rate=0.5, epochs=5, l2=0.0
    )
    assert model.SoftmaxModel.from_dict(fitted.model.to_dict()) == fitted.model
