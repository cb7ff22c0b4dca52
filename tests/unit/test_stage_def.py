"""StageParams as seed 001 writes it: fields typed with a `typing.TypedDict` (deep-copied
defaults) work on every Python version, 3.11 included."""

from __future__ import annotations

from typing import NotRequired, TypedDict

import pydantic
import pytest

from pivot.stage_def import StageParams


class Style(TypedDict):
    color: str
    width: int
    dash: NotRequired[str]


class PlotParams(StageParams):
    style: Style = {"color": "red", "width": 2}
    styles: list[Style] = []
    maybe: Style | None = None
    by_name: dict[str, Style] = {}


def test_typed_dict_fields_validate_and_dump() -> None:
    params = PlotParams(styles=[{"color": "k", "width": 1, "dash": "--"}])
    assert params.model_dump(mode="json") == {
        "style": {"color": "red", "width": 2},
        "styles": [{"color": "k", "width": 1, "dash": "--"}],
        "maybe": None,
        "by_name": {},
    }
    assert PlotParams.model_validate({"maybe": {"color": "b", "width": 3}}).maybe == {
        "color": "b",
        "width": 3,
    }


def test_typed_dict_defaults_are_deep_copied_per_instance() -> None:
    first, second = PlotParams(), PlotParams()
    first.style["color"] = "blue"
    assert second.style["color"] == "red"
    assert PlotParams().style == {"color": "red", "width": 2}


def test_typed_dict_fields_are_still_checked() -> None:
    with pytest.raises(pydantic.ValidationError, match="width"):
        PlotParams(style={"color": "red"})  # type: ignore[typeddict-item]
    with pytest.raises(pydantic.ValidationError, match="width"):
        PlotParams(by_name={"a": {"color": "red", "width": "wide"}})  # type: ignore[dict-item]
