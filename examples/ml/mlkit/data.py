"""Cleaning and splitting the flower table. Pure functions on DataFrames; no file I/O."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["clean_measurements", "stratified_split"]


def clean_measurements(
    raw: pd.DataFrame, *, features: Sequence[str], max_abs_zscore: float
) -> pd.DataFrame:
    """Drop rows with missing, non-positive or outlying measurements, and duplicated samples."""
    columns = list(features)
    frame = raw.dropna(subset=[*columns, "species"])
    frame = frame.drop_duplicates(subset="sample_id", keep="first")
    frame = frame[(frame[columns] > 0).all(axis=1)]
    grouped = frame.groupby("species")[columns]
    zscores = (frame[columns] - grouped.transform("mean")) / grouped.transform("std")
    zscores = zscores.fillna(0.0)  # a constant column (deviation 0) has no outliers
    frame = frame[(zscores.abs() <= max_abs_zscore).all(axis=1)]
    return frame.sort_values("sample_id").reset_index(drop=True)


def stratified_split(
    frame: pd.DataFrame, *, label: str, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each class at the same rate, so train and test keep the class balance."""
    rng = np.random.default_rng(seed)
    test_rows: list[int] = []
    for _, group in frame.groupby(label, sort=True):
        count = round(len(group) * test_fraction)
        test_rows.extend(rng.choice(group.index.to_numpy(), size=count, replace=False).tolist())
    is_test = frame.index.isin(test_rows)
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)
