"""End to end: the example project `examples/ml` in a temporary git repository, through the CLI.

Runs the real `pivot` (as `python -m pivot`) and asserts on files, lock files and exit codes:
the first `repro` writes every output, a second `repro` runs nothing, and a change to a param or
to a helper in `mlkit/` re-runs exactly the stages it affects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import cli_env

pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ml"
STAGES = ("clean", "split", "train", "evaluate")
OUTPUT_FILES = (
    "data/clean.csv",
    "data/train.csv",
    "data/test.csv",
    "model/model.json",
    "metrics/train.json",
    "metrics/eval.json",
    "plots/loss.png",
    "plots/confusion.png",
    "history/evaluations.jsonl",
)
CLASS_REPORTS = ("alba.json", "lutea.json", "rubra.json")
HISTORY = "history/evaluations.jsonl"


def pivot(project: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the CLI in `project`; assert its exit code, showing its output when it differs."""
    result = subprocess.run(
        [sys.executable, "-m", "pivot", *args],
        cwd=project,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == expect, (
        f"`pivot {' '.join(args)}` exited {result.returncode}, expected {expect}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def copy_example(destination: Path) -> Path:
    """A clean copy of the example in its own git repository, with `pivot init` done."""
    project = destination / "ml"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".pivot", ".pytest_cache")
    )
    for command in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "e2e@pivot.invalid"],
        ["git", "config", "user.name", "Pivot e2e"],
    ):
        subprocess.run(command, cwd=project, check=True)
    pivot(project, "init")
    return project


def lock(project: Path, stage: str) -> Any:
    """The parsed lock file of `stage` (JSON)."""
    return json.loads((project / ".pivot" / "stages" / f"{stage}.lock").read_text())


def lock_bytes(project: Path) -> dict[str, bytes]:
    return {
        stage: (project / ".pivot" / "stages" / f"{stage}.lock").read_bytes() for stage in STAGES
    }


def history(project: Path) -> list[dict[str, object]]:
    lines = (project / HISTORY).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def snapshot(project: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every output file: equal snapshots mean nothing was rewritten."""
    files = [project / name for name in OUTPUT_FILES]
    files += sorted((project / "reports" / "per_class").iterdir())
    return {
        str(path.relative_to(project)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in files
    }


def repro_and_list_ran(project: Path) -> list[str]:
    """Run `pivot repro --json`; the stages it reports as run, in pipeline order."""
    report = json.loads(pivot(project, "repro", "--json").stdout.splitlines()[-1])
    assert report["ok"] is True
    return [stage for stage in STAGES if report["stages"][stage]["status"] == "ran"]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example after `pivot init` and one `pivot repro` (tests using it must not change it)."""
    project = copy_example(tmp_path_factory.mktemp("example"))
    pivot(project, "repro")
    yield project


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A private copy after one `pivot repro`, for tests that change the project."""
    project = copy_example(tmp_path)
    pivot(project, "repro")
    return project


def test_init_creates_the_project_directory(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    assert (project / ".pivot").is_dir()
    pivot(project, "init", expect=2)  # a second init refuses


def test_first_repro_writes_every_output(ran: Path) -> None:
    for name in OUTPUT_FILES:
        assert (ran / name).is_file(), f"{name} was not written"
    reports = sorted(path.name for path in (ran / "reports" / "per_class").iterdir())
    assert reports == list(CLASS_REPORTS)
    assert (ran / "plots" / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_each_stage_has_a_lock_file_naming_its_deps_outs_and_params(ran: Path) -> None:
    train = lock(ran, "train")
    assert train["stage"] == "train"
    assert train["params"] == {
        "epochs": 200,
        "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "l2": 0.001,
        "learning_rate": 0.5,
    }
    assert [dep["path"] for dep in train["deps"]] == ["data/train.csv"]
    outs = {out["path"]: out for out in train["outs"]}
    assert sorted(outs) == ["metrics/train.json", "model/model.json", "plots/loss.png"]
    assert outs["metrics/train.json"]["cache"] is False  # a Metric lives in git, not the cache
    assert outs["model/model.json"]["cache"] is True
    split_outs = [out["path"] for out in lock(ran, "split")["outs"]]
    assert split_outs == ["data/test.csv", "data/train.csv"]
    evaluate_outs = {out["path"]: out for out in lock(ran, "evaluate")["outs"]}
    assert evaluate_outs["reports/per_class/"]["is_directory"] is True


def test_metrics_are_sane(ran: Path) -> None:
    train = json.loads((ran / "metrics" / "train.json").read_text())
    evaluation = json.loads((ran / "metrics" / "eval.json").read_text())
    assert 0.8 <= train["train_accuracy"] <= 1.0
    assert 0.0 < train["final_loss"] < 1.0
    assert 0.8 <= evaluation["accuracy"] <= 1.0
    assert 0.8 <= evaluation["macro_f1"] <= 1.0
    assert train["rows"] + evaluation["test_rows"] == 193  # 207 raw rows, 14 flawed ones dropped
    for name in CLASS_REPORTS:
        scores = json.loads((ran / "reports" / "per_class" / name).read_text())
        assert set(scores) == {"precision", "recall", "f1", "support"}
        assert scores["support"] == 16
    assert history(ran) == [{"evaluation": 1, **evaluation}]


def test_second_repro_runs_nothing(ran: Path) -> None:
    outputs, locks = snapshot(ran), lock_bytes(ran)
    assert repro_and_list_ran(ran) == []
    assert snapshot(ran) == outputs
    assert lock_bytes(ran) == locks
    assert len(history(ran)) == 1


def test_param_change_reruns_train_and_evaluate_only(fresh: Path) -> None:
    before = lock_bytes(fresh)
    edit(
        fresh / "pipeline.py",
        "params=TrainParams(epochs=200)",
        "params=TrainParams(epochs=400)",
    )
    assert repro_and_list_ran(fresh) == ["train", "evaluate"]
    after = lock_bytes(fresh)
    assert [stage for stage in STAGES if after[stage] != before[stage]] == ["train", "evaluate"]
    assert lock(fresh, "train")["params"]["epochs"] == 400
    assert [entry["evaluation"] for entry in history(fresh)] == [1, 2]


def test_helper_change_reruns_the_stages_that_call_it(fresh: Path) -> None:
    before = lock_bytes(fresh)
    edit(fresh / "mlkit" / "model.py", "raw.std(axis=0) + 1e-12", "raw.std(axis=0) + 1e-9")
    assert repro_and_list_ran(fresh) == ["train", "evaluate"]
    after = lock_bytes(fresh)
    assert [stage for stage in STAGES if after[stage] != before[stage]] == ["train", "evaluate"]
    assert len(history(fresh)) == 2


def test_checkout_restores_a_deleted_output(fresh: Path) -> None:
    model = (fresh / "model" / "model.json").read_bytes()
    (fresh / "model" / "model.json").unlink()
    pivot(fresh, "checkout")
    assert (fresh / "model" / "model.json").read_bytes() == model


def test_the_examples_own_unit_tests_pass(tmp_path: Path) -> None:
    project = tmp_path / "ml"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".pivot"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_helper_used_by_one_stage_reruns_only_that_stage(fresh: Path) -> None:
    before = lock_bytes(fresh)
    edit(
        fresh / "mlkit" / "evaluation.py",
        "round(numerator / denominator, 4)",
        "round(numerator / denominator, 3)",
    )
    assert repro_and_list_ran(fresh) == ["evaluate"]
    after = lock_bytes(fresh)
    assert [stage for stage in STAGES if after[stage] != before[stage]] == ["evaluate"]


def test_demo_script_runs_and_leaves_the_example_clean(tmp_path: Path) -> None:
    """`make demo` runs examples/run_demo.sh with the venv's bin first on PATH."""
    before = sorted(str(path.relative_to(EXAMPLE)) for path in EXAMPLE.rglob("*"))
    env = cli_env()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PIVOT_DEMO_DIR"] = str(tmp_path / "demo")
    result = subprocess.run(
        ["bash", str(EXAMPLE.parent / "run_demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Everything is up to date" in result.stdout
    assert f"are in: {tmp_path / 'demo'}" in result.stdout
    # evaluate ran three times: first run, the param change, the helper change
    assert len(history(tmp_path / "demo")) == 3
    report = tmp_path / "demo" / ".pivot" / "report" / "report.html"
    assert f"Report (open it in a browser; it needs no network): {report}" in result.stdout
    assert report.is_file() and "<svg" in report.read_text(encoding="utf-8")
    assert "metrics/train.json  final_loss" in result.stdout  # `pivot metrics diff`
    after = sorted(str(path.relative_to(EXAMPLE)) for path in EXAMPLE.rglob("*"))
    assert after == before, "the demo wrote into examples/ml"
