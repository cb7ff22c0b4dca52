"""pivot.yaml through the real CLI: a 3 x 4 matrix runs, re-runs exactly the variants a
params.yaml edit touches, shows in `pivot status`; command stages run in workers from the root."""

from __future__ import annotations

import json

from tests.e2e.conftest import E2EProject

TRAIN = """\
from typing import Annotated

from pivot import loaders
from pivot.outputs import Dep, Out
from pivot.stage_def import StageParams


class TrainParams(StageParams):
    model: str = "linear"
    size: int = 1
    lr: float = 0.1


def _ran(name: str) -> None:
    with open("runs.log", "a", encoding="utf-8") as handle:
        handle.write(name + "\\n")


def train(
    params: TrainParams, data: Annotated[str, Dep("data.txt", loaders.Text())]
) -> Annotated[dict, Out("model.json", loaders.JSON())]:
    _ran(f"{params.model}_{params.size}")
    return {"model": params.model, "size": params.size, "lr": params.lr, "chars": len(data)}
"""

MATRIX = """\
stages:
  train:
    python: stages.train.train
    matrix:
      model: [linear, forest, boost]
      size: [1, 2, 3, 4]
    params: {model: "${model}", size: "${size}"}
    outs: {return: "models/${model}_${size}.json"}
"""

NAMES = [f"train@{m}_{s}" for m in ("linear", "forest", "boost") for s in (1, 2, 3, 4)]


def test_matrix_runs_and_reruns_exactly_the_variants_params_yaml_touches(
    project: E2EProject,
) -> None:
    project.gen(
        {
            "stages/__init__.py": "",
            "stages/train.py": TRAIN,
            "data.txt": "rows",
            "pivot.yaml": MATRIX,
        }
    )
    status = project.status_json()
    assert sorted(status) == sorted(NAMES)
    listed = project.pivot("status").stdout
    assert all(f"{name}: would run" in listed for name in NAMES)
    assert set(project.repro_json("-j", "2").values()) == {"ran"}
    assert sorted(project.runs()) == sorted(name.split("@")[1] for name in NAMES)
    assert json.loads(project.read("models/forest_3.json"))["size"] == 3
    text = project.pivot("status").stdout
    assert "Everything is up to date (12 stages)" in text

    project.gen({"params.yaml": "train@forest_3:\n  lr: 0.5\n"})
    assert "train@forest_3: would run" in project.pivot("status").stdout
    statuses = project.repro_json()
    assert [name for name, state in statuses.items() if state == "ran"] == ["train@forest_3"]
    assert project.runs() == ["forest_3"]
    assert project.lock("train@forest_3")["params"]["lr"] == 0.5

    # The base entry applies to every variant; forest_3 keeps its own value, so it stays put.
    project.gen({"params.yaml": "train:\n  lr: 0.2\ntrain@forest_3:\n  lr: 0.5\n"})
    ran = {name for name, state in project.repro_json().items() if state == "ran"}
    assert ran == set(NAMES) - {"train@forest_3"}
    assert json.loads(project.read("models/boost_4.json"))["lr"] == 0.2

    project.gen({"params.yaml": "train:\n  lr: 0.2\ntrain@forest_3:\n  lr: fast\n"})
    failed = project.pivot("status", expect=2)
    assert "params.yaml:4: stage 'train@forest_3': field 'lr' of TrainParams" in failed.stderr


def test_command_stages_run_in_workers_from_the_root_and_track_their_command(
    project: E2EProject,
) -> None:
    project.gen(
        {
            "data.txt": "one two three\n",
            "params.yaml": "count:\n  unit: words\n",
            "sub/.keep": "",
            "pivot.yaml": """\
stages:
  words:
    cmd: wc -w < data.txt > words.txt && pwd > logs/words.where
    deps: [data.txt]
    outs: [words.txt, {logs/words.where: {cache: false}}]
  where:
    cmd: cd sub && pwd > ../where.txt
    outs: [where.txt]
  total:
    cmd: mkdir out && echo "$(cat words.txt) ${count.unit}" > out/total.txt
    deps: [words.txt]
    params: [count.unit]
    outs: [out/]
vars: [params.yaml]
""",
        }
    )
    project.pivot("repro", "-j", "2")
    assert project.read("out/total.txt").strip() == "3 words"
    assert project.read("logs/words.where").strip() == str(project.root)
    assert project.read("where.txt").strip() == str(project.root / "sub")
    assert project.lock("total")["params"] == {"count.unit": "words"}
    assert set(project.repro_json().values()) == {"skipped"}

    project.gen({"params.yaml": "count:\n  unit: tokens\n"})
    status = project.pivot("status", "--explain").stdout
    assert "total: would run" in status and "params changed: count.unit" in status
    assert "code changed: command" in status
    assert [n for n, s in project.repro_json().items() if s == "ran"] == ["total"]
    assert project.read("out/total.txt").strip() == "3 tokens"

    project.gen({"pivot.yaml": project.read("pivot.yaml").replace("wc -w <", "wc -w <  ")})
    assert [n for n, s in project.repro_json().items() if s == "ran"] == ["words"]

    project.gen({"pivot.yaml": project.read("pivot.yaml").replace("pwd > ../where", "exit 3; x")})
    failed = project.pivot("repro", expect=1)
    assert "returned non-zero exit status 3" in failed.output


def test_pivot_schema_prints_the_json_schema(project: E2EProject) -> None:
    schema = project.pivot("schema").json
    assert schema["title"] == "pivot.yaml"
    assert "matrix" in schema["properties"]["stages"]["additionalProperties"]["properties"]
