"""`register(..., resources=...)`: validated at registration, kept on the StageSpec."""

from __future__ import annotations

from typing import Any

import pytest

from pivot import errors
from pivot.pipeline import Pipeline
from pivot.spec import check_resources
from tests.fixtures import defs_stages


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, {}),
        ({"gpu": 1}, {"gpu": 1.0}),
        ({"memory": "8GB", "cpus": 2}, {"memory": 8e9, "cpus": 2.0}),
        ({"memory": "512MiB"}, {"memory": 512 * 2**20}),
        ({"memory": "1.5 gb"}, {"memory": 1.5e9}),
        ({"scratch": 0.5}, {"scratch": 0.5}),
    ],
)
def test_amounts(given: Any, expected: dict[str, float]) -> None:
    assert check_resources("train", given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"gpu": 0}, "resource 'gpu' needs a positive amount"),
        ({"gpu": -1}, "positive amount"),
        ({"gpu": True}, "positive amount"),
        ({"memory": "8 bananas"}, "a size such as '8GB'"),
        ({"gpu": None}, "positive amount"),
        ({"two words": 1}, "must be a word"),
        ([("gpu", 1)], "must be a dict"),
    ],
)
def test_bad_resources_name_the_stage_and_the_fix(given: Any, message: str) -> None:
    with pytest.raises(errors.PipelineConfigError, match=message) as raised:
        check_resources("train", given)
    assert "stage 'train'" in str(raised.value)


def test_register_keeps_resources_on_the_spec() -> None:
    pipeline = Pipeline("p")
    spec = pipeline.register(defs_stages.produce_shared, resources={"gpu": 1, "memory": "2GB"})
    assert spec.resources == {"gpu": 1.0, "memory": 2e9}
    assert pipeline.register(defs_stages.consume_shared).resources == {}


def test_register_rejects_bad_resources_before_adding_the_stage() -> None:
    pipeline = Pipeline("p")
    with pytest.raises(errors.PipelineConfigError):
        pipeline.register(defs_stages.produce_shared, resources={"gpu": "lots"})
    assert len(pipeline) == 0
