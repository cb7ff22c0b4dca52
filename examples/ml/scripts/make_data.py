"""Generate `data/raw/flowers.csv`, the example's input, deterministically.

Run once from `examples/ml/` (`python scripts/make_data.py`); the result is committed. This is a
one-off script, not a stage: it writes its file itself. The data is synthetic: three species of
flower with four measurements each, plus a few flawed rows (missing values, duplicated ids,
impossible measurements and outliers) for the `clean` stage to remove.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["make_flowers"]

SEED = 20240611
ROWS_PER_SPECIES = 68
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
# mean and standard deviation (cm) of each feature, per species
SPECIES = {
    "alba": ((5.0, 0.35), (3.4, 0.38), (1.5, 0.18), (0.25, 0.10)),
    "rubra": ((5.9, 0.50), (2.8, 0.31), (4.4, 0.50), (1.40, 0.22)),
    "lutea": ((6.3, 0.62), (2.9, 0.32), (5.0, 0.55), (1.80, 0.28)),
}
OUTPUT = Path(__file__).resolve().parent.parent / "data" / "raw" / "flowers.csv"


def _species_rows(rng: np.random.Generator, species: str) -> pd.DataFrame:
    stats = SPECIES[species]
    values = {
        name: rng.normal(mean, std, ROWS_PER_SPECIES).clip(0.05)
        for name, (mean, std) in zip(FEATURES, stats, strict=True)
    }
    return pd.DataFrame({"species": species, **values})


def _add_flaws(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    rows = rng.choice(len(frame), size=14, replace=False)
    for row, column in zip(rows[:6], rng.choice(FEATURES, size=6), strict=True):
        frame.loc[row, column] = np.nan  # missing measurement
    for row in rows[6:9]:
        frame.loc[row, "petal_width"] = -1.0  # impossible measurement
    for row in rows[9:11]:
        frame.loc[row, "sepal_length"] = 48.0  # a unit slip: mm instead of cm
    duplicates = frame.iloc[rows[11:14]]  # the same sample entered twice
    return pd.concat([frame, duplicates], ignore_index=True)


def make_flowers(seed: int = SEED) -> pd.DataFrame:
    """The raw table: sample_id, species and the four measurements, shuffled."""
    rng = np.random.default_rng(seed)
    frame = pd.concat([_species_rows(rng, name) for name in SPECIES], ignore_index=True)
    frame.insert(0, "sample_id", [f"s{index:03d}" for index in range(len(frame))])
    frame = _add_flaws(rng, frame)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


if __name__ == "__main__":
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    make_flowers().to_csv(OUTPUT, index=False, float_format="%.2f")
    print(f"wrote {OUTPUT}")
