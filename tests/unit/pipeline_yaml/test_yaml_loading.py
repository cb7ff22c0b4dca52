"""pivot.yaml and params.yaml read in-process: matrices, substitution, overrides, and errors that
name the file and line and say what to fix."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from pivot import discovery, project
from pivot.errors import DiscoveryError, PipelineFileError
from pivot.pipeline import Pipeline
from pivot.pipeline_yaml import pivot_yaml_schema

STAGES = """\
from typing import Annotated

from pivot import loaders
from pivot.outputs import Dep, Out
from pivot.stage_def import StageParams


class Settings(StageParams):
    name: str = "x"
    size: int = 1
    lr: float = 0.1
    extra: dict[str, int] = {}


def fit(
    params: Settings, data: Annotated[str, Dep("data.txt", loaders.Text())]
) -> Annotated[dict, Out("model.json", loaders.JSON())]:
    return {"name": params.name, "size": params.size, "lr": params.lr}


def plain(data: Annotated[str, Dep("data.txt", loaders.Text())]) -> Annotated[str, Out("plain.txt", loaders.Text())]:
    return data
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(sys, "path_hooks", list(sys.path_hooks))
    monkeypatch.setattr(sys, "path_importer_cache", dict(sys.path_importer_cache))
    project.init_project(tmp_path)
    (tmp_path / "ymlstages.py").write_text(STAGES)
    (tmp_path / "data.txt").write_text("data")
    yield tmp_path
    sys.modules.pop("ymlstages", None)


def load(root: Path, pivot_yaml: str, params_yaml: str | None = None) -> Pipeline:
    (root / "pivot.yaml").write_text(textwrap.dedent(pivot_yaml))
    if params_yaml is not None:
        (root / "params.yaml").write_text(textwrap.dedent(params_yaml))
    return discovery.load_pipeline(project.load_project(root))


def error_of(root: Path, pivot_yaml: str, params_yaml: str | None = None) -> str:
    with pytest.raises(PipelineFileError) as raised:
        load(root, pivot_yaml, params_yaml)
    return str(raised.value)


MATRIX = """\
stages:
  fit:
    python: ymlstages.fit
    matrix:
      model: [linear, forest, boost]
      size: [1, 2, 3, 4]
    params: {name: "${model}", size: "${size}"}
    outs: {return: "models/${model}_${size}.json"}
"""


def test_matrix_expands_in_the_order_written_with_generated_names(root: Path) -> None:
    stages = load(root, MATRIX).stages
    assert list(stages) == [
        f"fit@{m}_{s}" for m in ("linear", "forest", "boost") for s in (1, 2, 3, 4)
    ]
    spec = stages["fit@forest_3"]
    assert spec.out_paths == ("models/forest_3.json",)
    assert spec.params is not None and spec.params.model_dump()["size"] == 3  # kept an int


def test_exclude_and_per_value_overrides(root: Path) -> None:
    stages = load(
        root,
        """\
        stages:
          fit:
            python: ymlstages.fit
            matrix:
              model: {small: {lr: 0.5}, large: {lr: 0.01}}
              size: [1, 2]
            params: {name: "${model}", lr: "${model.lr}"}
            outs: {return: "m/${model}-${size}.json"}
            exclude:
              - {model: large, size: 1}
            overrides:
              - when: {size: 2}
                params: {extra: {wide: 1}}
        """,
    ).stages
    assert list(stages) == ["fit@small_1", "fit@small_2", "fit@large_2"]
    dumped = {name: spec.params.model_dump() for name, spec in stages.items() if spec.params}
    assert dumped["fit@small_1"] == {"name": "small", "size": 1, "lr": 0.5, "extra": {}}
    assert dumped["fit@large_2"]["lr"] == 0.01 and dumped["fit@large_2"]["extra"] == {"wide": 1}


def test_list_values_named_by_their_name_key(root: Path) -> None:
    stages = load(
        root,
        """\
        stages:
          fit:
            python: ymlstages.fit
            matrix:
              model: [{name: small, lr: 0.5}, {name: large, lr: 0.01}]
            params: {name: "${model}", lr: "${model.lr}"}
            outs: {return: "m/${model}.json"}
        """,
    ).stages
    assert list(stages) == ["fit@small", "fit@large"]
    assert stages["fit@large"].params.model_dump()["lr"] == 0.01  # type: ignore[union-attr]


def test_params_yaml_applies_base_then_variant(root: Path) -> None:
    stages = load(
        root,
        MATRIX,
        """\
        fit:
          lr: 0.2
          extra: {a: 1}
        fit@forest_3:
          lr: 0.7
          extra: {b: 2}
        """,
    ).stages
    assert stages["fit@linear_1"].params.model_dump()["lr"] == 0.2  # type: ignore[union-attr]
    forest = stages["fit@forest_3"].params.model_dump()  # type: ignore[union-attr]
    assert forest["lr"] == 0.7 and forest["extra"] == {"a": 1, "b": 2}  # deep merge
    assert forest["name"] == "forest"  # pivot.yaml's value stays where params.yaml is silent


def test_params_yaml_error_names_stage_field_and_line(root: Path) -> None:
    message = error_of(root, MATRIX, "fit:\n  lr: 0.2\nfit@boost_2:\n  size: big\n")
    assert "params.yaml:4: stage 'fit@boost_2': field 'size' of Settings" in message
    message = error_of(root, MATRIX, "fit:\n  rate: 0.2\n")
    assert "params.yaml:2: stage 'fit@linear_1': field 'rate'" in message
    assert "Extra inputs are not permitted" in message
    assert "params.yaml:1: 'fti' names no stage. Did you mean 'fit'?" in error_of(
        root, MATRIX, "fti:\n  lr: 0.2\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n    parms: {lr: 1}\n",
            "pivot.yaml:4: unknown key 'parms'. Did you mean 'params'?",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fitt\n",
            "pivot.yaml:3: unknown function 'ymlstages.fitt': module 'ymlstages' has no function "
            "'fitt'. Did you mean fit?",
        ),
        (
            "stages:\n  fit:\n    python: nowhere.fit\n",
            "pivot.yaml:3: unknown function 'nowhere.fit': no module 'nowhere'",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n    matrix: {m: [a, b]}\n"
            "    outs: {return: '${mdl}.json'}\n",
            "pivot.yaml:5: bad substitution ${mdl}: 'mdl' is not a matrix dimension or a var",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n    matrix: {m: [a, b]}\n"
            "    outs: {return: '${m.lr}.json'}\n",
            "pivot.yaml:5: bad substitution ${m.lr}: m has no key 'lr'",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n    matrix:\n      a: [x_y, x]\n"
            "      b: [z, y_z]\n    outs: {return: '${a}-${b}.json'}\n",
            "pivot.yaml:4: duplicate generated stage name 'fit@x_y_z'",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n    params: {size: huge}\n",
            "pivot.yaml:4: stage 'fit': field 'size' of Settings",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n    deps: {dta: other.txt}\n",
            "pivot.yaml:4: stage 'fit': dep_path_overrides names unknown dependency 'dta'",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n  fit:\n    python: ymlstages.plain\n",
            "pivot.yaml:4: key 'fit' appears twice in the same mapping (first on line 2)",
        ),
        (
            "stages:\n  a:\n    python: ymlstages.fit\n  b:\n    python: ymlstages.fit\n",
            "pivot.yaml:4: output 'model.json' of stage 'b' is already specified in stage 'a'",
        ),
        (
            "stages:\n  fit:\n    cmd: echo\n    python: ymlstages.fit\n",
            "pivot.yaml:2: stage 'fit' needs exactly one of",
        ),
        (
            "stages:\n  fit:\n    python: ymlstages.fit\n    matrix: {m: [a]}\n    exclude:\n"
            "      - {m: b}\n",
            "pivot.yaml:6: exclude entry {'m': 'b'} matches no combination",
        ),
        ("stages:\n  fit: [\n", "pivot.yaml:3: not valid YAML"),
    ],
    ids=[
        "unknown-key",
        "unknown-function",
        "unknown-module",
        "unknown-dimension",
        "missing-dimension-key",
        "duplicate-generated-name",
        "invalid-param",
        "unknown-dep-override",
        "duplicate-key",
        "output-conflict",
        "python-and-cmd",
        "unused-exclude",
        "syntax",
    ],
)
def test_errors_point_at_the_line_and_say_what_to_fix(root: Path, text: str, expected: str) -> None:
    assert expected in error_of(root, text)


def test_pivot_yaml_merges_with_pipeline_py_and_collisions_are_errors(root: Path) -> None:
    (root / "pipeline.py").write_text(
        "from pivot.pipeline import Pipeline\nimport ymlstages\n\n"
        "pipeline = Pipeline('both')\npipeline.register(ymlstages.plain)\n"
    )
    merged = load(root, "stages:\n  fit:\n    python: ymlstages.fit\n")
    assert list(merged.stages) == ["plain", "fit"]
    message = error_of(
        root,
        "stages:\n  plain:\n    python: ymlstages.plain\n    outs: {return: other.txt}\n",
    )
    assert "pivot.yaml:2: stage 'plain' is also defined in pipeline.py" in message


def test_neither_file_is_a_discovery_error(root: Path) -> None:
    with pytest.raises(DiscoveryError, match=r"no pipeline\.py or pivot\.yaml"):
        discovery.load_pipeline(project.load_project(root))


def test_command_stage_params_read_free_form_params_yaml(root: Path) -> None:
    (root / "params.yaml").write_text("train:\n  lr: 0.1\n  layers: [3, 4]\nname: run\n")
    stages = load(
        root,
        """\
        vars: [params.yaml]
        stages:
          train:
            cmd: python train.py --lr ${train.lr} --name ${name}
            deps: [data.txt]
            params: [train.lr, train.layers]
            outs: [model.bin, {logs/: {cache: false}}]
            metrics: [scores.json]
        """,
    ).stages
    spec = stages["train"]
    assert spec.command == "python train.py --lr 0.1 --name run"
    assert spec.params is not None
    assert spec.params.model_dump() == {"train.lr": 0.1, "train.layers": [3, 4]}
    assert spec.out_paths == ("model.bin", "logs/", "scores.json")
    assert [out.cache for out in spec.outs] == [True, False, True]
    message = error_of(root, "stages:\n  t:\n    cmd: 'true'\n    params: [train.rate]\n")
    assert "pivot.yaml:4: params key 'train.rate' is not in params.yaml" in message


def test_schema_accepts_valid_documents_and_rejects_unknown_keys() -> None:
    schema = pivot_yaml_schema()
    json.dumps(schema)  # plain JSON
    validator = jsonschema.Draft7Validator(schema)
    validator.check_schema(schema)
    good = yaml.safe_load(MATRIX)
    assert not list(validator.iter_errors(good))
    command = {
        "stages": {"t": {"cmd": "make", "deps": ["a"], "outs": ["b", {"c/": {"cache": False}}]}}
    }
    assert not list(validator.iter_errors(command))
    bad = {"stages": {"fit": {"python": "ymlstages.fit", "parms": {}}}}
    assert list(validator.iter_errors(bad))
    assert list(validator.iter_errors({"stages": {"x": {"deps": []}}}))  # neither python nor cmd
