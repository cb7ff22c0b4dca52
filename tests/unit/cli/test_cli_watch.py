"""What triggers a watch-mode run: dependencies, sources, config; never outputs or ignored paths."""

from __future__ import annotations

from pathlib import Path

from pivot import api
from pivot.cli.watch import Relevance


def _relevance(ignored: tuple[str, ...] = ()) -> Relevance:
    scope = api.WatchScope(
        root=Path("/project"),
        stages=("prepare", "train"),
        deps=frozenset({"data/raw.csv", "images", "data/clean.csv"}),
        outputs=frozenset({"data/clean.csv", "models"}),
    )
    return Relevance(scope, (lambda path: path.startswith(ignored)) if ignored else None)


def test_dependencies_sources_and_config_trigger() -> None:
    relevant = _relevance()
    for path in (
        "data/raw.csv",
        "images/cat/1.png",
        "pipeline.py",
        "lib/helpers.py",
        "data/raw.csv.pvt",
        ".pivot/config.yaml",
        ".pivotignore",
        "pivot.yaml",
        "params.yaml",
    ):
        assert relevant(path), path


def test_outputs_and_pivot_state_never_trigger() -> None:
    relevant = _relevance()
    for path in (
        "data/clean.csv",  # an output (also a dependency downstream): Pivot writes it
        "models/weights.bin",
        ".pivot/logs/train.log",
        ".pivot/cache/files/ab/cdef",
        ".pivot/stages/train.lock",
        ".git/index",
        "notes.txt",  # not a dependency of any stage
        "lib/__pycache__/helpers.cpython-311.pyc",
        "imagesX/1.png",  # a sibling of a dependency directory, not inside it
    ):
        assert not relevant(path), path


def test_pivotignored_paths_never_trigger() -> None:
    relevant = _relevance(ignored=("images/tmp/", "scratch/"))
    assert not relevant("images/tmp/x.png")
    assert not relevant("scratch/try.py")
    assert relevant("images/ok.png")
