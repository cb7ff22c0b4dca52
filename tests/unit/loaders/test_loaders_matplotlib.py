"""MatplotlibFigure: saves real images in the format of the extension, then closes the figure."""

from __future__ import annotations

import pathlib
import struct
from typing import Any

import matplotlib.pyplot as plt
import pytest

from pivot.loaders import MatplotlibFigure

MAGIC = {
    "png": b"\x89PNG\r\n\x1a\n",
    "pdf": b"%PDF-",
    "svg": b"<?xml",
}


def _figure() -> Any:
    figure, axes = plt.subplots(figsize=(2, 1))
    axes.plot([0, 1, 2], [2, 0, 1])
    return figure


def _png_size(path: pathlib.Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


@pytest.mark.parametrize("extension", ["png", "pdf", "svg", "PNG"])
def test_format_follows_the_extension(tmp_path: pathlib.Path, extension: str) -> None:
    path = tmp_path / "plots" / f"loss.{extension}"
    MatplotlibFigure().save(_figure(), path)
    data = path.read_bytes()
    assert data.startswith(MAGIC[extension.lower()])
    if extension == "svg":
        assert b"<svg" in data


def test_figure_is_closed_after_saving(tmp_path: pathlib.Path) -> None:
    figure = _figure()
    assert figure.number in plt.get_fignums()
    MatplotlibFigure().save(figure, tmp_path / "p.png")
    assert figure.number not in plt.get_fignums()


def test_many_figures_do_not_accumulate(tmp_path: pathlib.Path) -> None:
    before = set(plt.get_fignums())
    for index in range(25):
        MatplotlibFigure(dpi=20).save(_figure(), tmp_path / f"p{index}.png")
    assert set(plt.get_fignums()) == before


def test_dpi_sets_the_pixel_size(tmp_path: pathlib.Path) -> None:
    MatplotlibFigure().save(_figure(), tmp_path / "default.png")
    MatplotlibFigure(dpi=50).save(_figure(), tmp_path / "small.png")
    assert _png_size(tmp_path / "default.png") == (300, 150)  # 2x1 inches at dpi=150
    assert _png_size(tmp_path / "small.png") == (100, 50)


def test_bbox_inches_tight_changes_the_size(tmp_path: pathlib.Path) -> None:
    MatplotlibFigure(dpi=50, bbox_inches="tight").save(_figure(), tmp_path / "tight.png")
    assert _png_size(tmp_path / "tight.png") != (100, 50)


def test_transparent_background(tmp_path: pathlib.Path) -> None:
    def first_pixel_alpha(path: pathlib.Path) -> int:
        image = plt.imread(path)
        return round(float(image[0, 0, 3]) * 255)

    MatplotlibFigure(dpi=20).save(_figure(), tmp_path / "opaque.png")
    MatplotlibFigure(dpi=20, transparent=True).save(_figure(), tmp_path / "clear.png")
    assert first_pixel_alpha(tmp_path / "opaque.png") == 255
    assert first_pixel_alpha(tmp_path / "clear.png") == 0


def test_a_figure_from_the_object_api_saves_too(tmp_path: pathlib.Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.add_subplot().bar(["a", "b"], [1, 2])
    MatplotlibFigure(dpi=10).save(figure, tmp_path / "bar.png")
    assert (tmp_path / "bar.png").read_bytes().startswith(MAGIC["png"])
