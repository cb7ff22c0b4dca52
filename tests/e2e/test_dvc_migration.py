"""Migration from and to DVC with the real `dvc` (in its own venv, `make dvc-venv`).

- A realistic DVC project (tests/e2e/dvc_project.py: foreach, matrix, params, vars, wdir, a
  directory output, metrics) imported and run by Pivot gives byte-identical outputs to `dvc repro`;
- imported after `dvc repro`, every stage dvc.lock shows up to date is carried over (nothing
  re-runs), and a params.yaml edit re-runs exactly the stages DVC would;
- `pivot export` writes a dvc.yaml that `dvc repro` runs, with the outputs Pivot makes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import E2EProject, cli_env, git, make_git_project
from tests.e2e.dvc_project import FILES, OUTPUTS
from tests.e2e.test_docs import read_blocks

ROOT = Path(__file__).resolve().parents[2]


def _dvc_executable() -> str:
    """DVC from $PIVOT_DVC, the repository's DVC venv (`make dvc-venv`), or PATH."""
    candidates = [
        os.environ.get("PIVOT_DVC", ""),
        str(ROOT / "benchmarks" / ".venv-dvc" / "bin" / "dvc"),
        shutil.which("dvc") or "",
    ]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if found is None:
        pytest.fail("dvc is not installed: run `make dvc-venv` (or set PIVOT_DVC to a dvc binary)")
    return found


@pytest.fixture(scope="module")
def dvc() -> str:
    return _dvc_executable()


def _env(tmp_path: Path) -> dict[str, str]:
    """Commands in dvc.yaml run `python`: this interpreter, with Pivot importable."""
    env = cli_env()
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_SITE_CACHE_DIR"] = str(tmp_path / "dvc-site-cache")
    return env


def run_dvc(dvc: str, cwd: Path, *args: str) -> str:
    completed = subprocess.run(
        [dvc, *args],
        cwd=cwd,
        env=_env(cwd.parent),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, f"dvc {' '.join(args)}:\n{completed.stdout}{completed.stderr}"
    return completed.stdout


def dvc_project(directory: Path, *, pivot: bool) -> E2EProject:
    """The DVC sample project in a fresh git repository (committed), optionally `pivot init`ed."""
    proj = make_git_project(directory, init=pivot)
    proj.gen(FILES)
    git(directory, "add", "-A")
    git(directory, "commit", "-qm", "dvc project")
    return proj


def contents(proj: E2EProject) -> dict[str, str]:
    return {path: proj.read(path) for path in OUTPUTS}


@pytest.fixture(scope="module")
def reproduced_by_dvc(dvc: str, tmp_path_factory: pytest.TempPathFactory) -> E2EProject:
    """The sample project after `dvc repro` (shared: the tests below copy it)."""
    proj = dvc_project(tmp_path_factory.mktemp("dvc") / "proj", pivot=False)
    run_dvc(dvc, proj.root, "init", "-q")
    run_dvc(dvc, proj.root, "repro", "-q")
    return proj


def _copy(source: E2EProject, target: Path) -> E2EProject:
    shutil.copytree(source.root, target, symlinks=True)
    return E2EProject(target)


def test_imported_project_run_by_pivot_matches_dvc_repro(
    reproduced_by_dvc: E2EProject, tmp_path: Path
) -> None:
    proj = dvc_project(tmp_path / "fresh", pivot=True)
    result = proj.pivot("import-dvc")
    assert "Will run on the next `pivot repro`: 11" in result.stdout  # no dvc.lock here
    document = proj.read("pivot.yaml")
    assert "region@north:" in document and "report@rmse-md:" in document
    assert "cd eval && python ../src/evaluate.py" in document  # wdir
    assert "python src/train.py ${train.epochs} ${train.lr}" in document  # reads params.yaml
    statuses = proj.repro_json("-j", "2")
    assert set(statuses.values()) == {"ran"} and len(statuses) == 11
    assert contents(proj) == contents(reproduced_by_dvc)
    lock = proj.lock("train")
    assert lock["params"] == {"train.epochs": 4, "train.lr": 0.05}
    assert {out["path"] for out in proj.lock("prepare")["outs"]} == {"data/prepared/"}
    scores = {out["path"]: out for out in proj.lock("evaluate")["outs"]}
    assert scores["eval/scores.json"]["cache"] is False  # a metric with cache: false
    assert set(proj.repro_json().values()) == {"skipped"}
    # DVC's metrics and params keys show in Pivot's results commands.
    metrics = proj.pivot("metrics", "show", "--json").json["metrics"]
    assert [(m["path"], m["values"]) for m in metrics] == [
        ("eval/scores.json", json.loads(proj.read("eval/scores.json")))
    ]
    shown = proj.pivot("params", "show", "train", "--json").json["params"]
    assert shown[0]["params"] == {"train.epochs": 4, "train.lr": 0.05}


def test_import_after_dvc_repro_carries_dvc_lock_over(
    dvc: str, reproduced_by_dvc: E2EProject, tmp_path: Path
) -> None:
    proj = _copy(reproduced_by_dvc, tmp_path / "migrated")
    result = proj.pivot("import-dvc")  # no .pivot/ yet: import-dvc runs `pivot init`
    assert "Carried over from dvc.lock (up to date, will not re-run): 11" in result.stdout
    assert "foreach over ${regions} was expanded at import" in result.stdout
    status = proj.status_json()
    assert {name: stage["action"] for name, stage in status.items()} == dict.fromkeys(
        status, "skip"
    )
    assert set(proj.repro_json().values()) == {"skipped"}
    # An edit of params.yaml re-runs exactly what `dvc status` says changed, and both agree.
    for where in (proj.root, reproduced_by_dvc.root):
        params = (where / "params.yaml").read_text(encoding="utf-8")
        (where / "params.yaml").write_text(params.replace("lr: 0.05", "lr: 0.07"), "utf-8")
    try:
        dvc_stale = set(json.loads(run_dvc(dvc, reproduced_by_dvc.root, "status", "--json")))
    finally:
        params = (reproduced_by_dvc.root / "params.yaml").read_text(encoding="utf-8")
        (reproduced_by_dvc.root / "params.yaml").write_text(params.replace("0.07", "0.05"), "utf-8")
    ran = {name for name, state in proj.repro_json().items() if state == "ran"}
    assert ran == {
        "train",
        "evaluate",
        "report@mae-txt",
        "report@mae-md",
        "report@rmse-txt",
        "report@rmse-md",
    }
    assert dvc_stale <= ran and "train" in dvc_stale
    assert (
        "lr: 0.07" in proj.read("params.yaml") and proj.lock("train")["params"]["train.lr"] == 0.07
    )


def test_import_does_not_carry_a_stage_whose_output_changed(
    reproduced_by_dvc: E2EProject, tmp_path: Path
) -> None:
    proj = _copy(reproduced_by_dvc, tmp_path / "edited")
    proj.gen({"model.json": '{"w": 0}'})
    result = proj.pivot("import-dvc")
    assert "train: output 'model.json' is missing or differs from dvc.lock" in result.stdout
    assert "evaluate: dependency '../model.json' is missing or differs" in result.stdout
    assert "Carried over from dvc.lock (up to date, will not re-run): 9" in result.stdout
    statuses = proj.repro_json()
    assert {name for name, state in statuses.items() if state == "ran"} == {"train", "evaluate"}
    assert proj.read("model.json") == reproduced_by_dvc.read("model.json")


def test_import_refuses_to_overwrite_and_names_unknown_references(tmp_path: Path) -> None:
    proj = dvc_project(tmp_path / "p", pivot=True)
    proj.gen({"pivot.yaml": "stages: {}\n"})
    refused = proj.pivot("import-dvc", expect=2)
    assert "pivot.yaml exists; pass --force" in refused.stderr
    proj.gen({"dvc.yaml": FILES["dvc.yaml"].replace("${train.lr}", "${train.rate}")})
    broken = proj.pivot("import-dvc", "--force", "-o", "other.yaml", expect=2)
    assert "${train.rate}: no key 'rate'" in broken.stderr


def test_export_writes_a_dvc_yaml_that_dvc_repro_runs(dvc: str, project: E2EProject) -> None:
    project.gen({"data/words.txt": "alpha beta\ngamma\n", **_EXPORT_FILES})
    reference = project.repro_json()
    assert set(reference.values()) == {"ran"}
    expected = {path: project.read(path) for path in _EXPORT_OUTPUTS}
    result = project.pivot("export")
    assert "3 stage(s)" in result.stdout
    exported = project.read("dvc.yaml")
    assert "cmd: python -m pivot run count@upper" in exported
    assert "params.yaml:" in exported and "count.factor" in exported
    # A fresh clone with only the sources: DVC runs every stage through Pivot.
    clone = make_git_project(project.root.parent / "clone")
    for name in ("pipeline.py", "pivot.yaml", "params.yaml", "dvc.yaml", "data/words.txt"):
        clone.gen({name: project.read(name)})
    run_dvc(dvc, clone.root, "init", "-q")
    run_dvc(dvc, clone.root, "repro", "-q")
    assert {path: clone.read(path) for path in _EXPORT_OUTPUTS} == expected
    lock = (clone.root / "dvc.lock").read_text(encoding="utf-8")
    assert "count-upper:" in lock and "summary/total.json" in lock
    assert set(clone.repro_json().values()) == {"skipped"}  # Pivot recorded DVC's runs


_EXPORT_FILES = {
    "pipeline.py": """\
from typing import Annotated

from pivot import loaders
from pivot.outputs import Dep, Metric, Out
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams


class CountParams(StageParams):
    upper: bool = False
    factor: int = 1


def count(
    params: CountParams, text: Annotated[str, Dep("data/words.txt", loaders.Text())]
) -> Annotated[str, Out("counts/x.txt", loaders.Text())]:
    words = text.upper().split() if params.upper else text.split()
    return f"{words[0]} {len(words) * params.factor}\\n"


def total(
    lower: Annotated[str, Dep("counts/lower.txt", loaders.Text())],
    upper: Annotated[str, Dep("counts/upper.txt", loaders.Text())],
) -> Annotated[dict, Metric("summary/total.json")]:
    return {"lines": [lower.strip(), upper.strip()]}


pipeline = Pipeline("export")
pipeline.register(total)
""",
    "pivot.yaml": """\
stages:
  count:
    python: pipeline.count
    matrix:
      case: [lower, upper]
    params: {upper: false}
    outs: {return: "counts/${case}.txt"}
    overrides:
      - when: {case: upper}
        params: {upper: true}
""",
    "params.yaml": "count:\n  factor: 3\n",
}
_EXPORT_OUTPUTS = ("counts/lower.txt", "counts/upper.txt", "summary/total.json")


def test_migration_guide_shows_what_import_dvc_writes(tmp_path: Path) -> None:
    """docs/migrating-from-dvc.md: its DVC project, imported, gives the pivot.yaml it shows
    (test_docs.py runs that pivot.yaml)."""
    page = ROOT / "docs" / "migrating-from-dvc.md"
    blocks = {block.file_name: block.text for block in read_blocks(page) if block.file_name}
    shown = blocks.pop("pivot.yaml")
    proj = make_git_project(tmp_path / "guide")
    proj.gen({name: text for name, text in blocks.items() if name is not None})
    report = proj.pivot("import-dvc").stdout
    assert proj.read("pivot.yaml") == shown
    assert "Will run on the next `pivot repro`: 4" in report
    assert proj.repro_json()["evaluate"] == "ran"
    assert json.loads(proj.read("reports/metrics.json")) == {
        "short": 14,
        "long": 1,
        "share_long": 0.067,
    }


def test_import_of_a_dvc_yaml_in_a_subdirectory(project: E2EProject) -> None:
    project.gen(
        {
            "pipelines/dvc.yaml": (
                "stages:\n"
                "  greet:\n"
                '    cmd: echo "hello ${who.name}" > out/greeting.txt\n'
                "    params: [who.name]\n"
                "    outs: [out/greeting.txt]\n"
                "  shout:\n"
                "    cmd: tr a-z A-Z < out/greeting.txt > ../loud.txt\n"
                "    deps: [out/greeting.txt]\n"
                "    outs: [../loud.txt]\n"
            ),
            "pipelines/params.yaml": "who:\n  name: ada\n",
        }
    )
    outside = project.pivot(
        "import-dvc", "-o", "../../elsewhere.yaml", cwd=project.root / "pipelines", expect=2
    )
    assert "is outside the project" in outside.stderr
    project.pivot("import-dvc", "--dvc-yaml", "pipelines/dvc.yaml")
    document = project.read("pivot.yaml")
    assert "cd pipelines && tr a-z A-Z < out/greeting.txt > ../loud.txt" in document
    assert "- pipelines/params.yaml:\n      - who.name" in document
    project.pivot("repro")
    assert project.read("loud.txt") == "HELLO ADA\n"
    assert project.lock("greet")["params"] == {"pipelines/params.yaml:who.name": "ada"}
    project.gen({"pipelines/params.yaml": "who:\n  name: bob\n"})
    assert set(project.repro_json().values()) == {"ran"}
    assert project.read("loud.txt") == "HELLO BOB\n"
