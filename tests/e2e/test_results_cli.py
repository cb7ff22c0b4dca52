"""End to end: metrics, params, dag, list, history and show on a project with three commits in
which a metric, a param and a plot change (tests/e2e/results_project.py), text and --json."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2EProject
from tests.e2e.results_project import build


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> E2EProject:
    return build(tmp_path_factory.mktemp("results") / "proj")


def _snapshot(project: E2EProject) -> dict[str, bytes]:
    """Every file of the project outside .git and the state db: reading commands change none."""
    skip = (".git/", ".pivot/state.db")
    return {
        path.relative_to(project.root).as_posix(): path.read_bytes()
        for path in sorted(project.root.rglob("*"))
        if path.is_file() and not path.relative_to(project.root).as_posix().startswith(skip)
    }


def test_metrics_show_flattens_nested_keys(history: E2EProject) -> None:
    shown = history.pivot("metrics", "show", "--json").json
    assert shown == {
        "metrics": [
            {
                "path": "metrics/train.json",
                "stage": "train",
                "values": {"loss": 0.0625, "rows": 3, "scores.accuracy": 0.9375},
                "error": None,
            }
        ]
    }
    text = history.pivot("metrics", "show", "train", "--precision", "2").stdout
    assert "metrics/train.json  scores.accuracy  0.94" in text
    markdown = history.pivot("metrics", "show", "--md").stdout
    assert markdown.splitlines()[0] == "| Path | Key | Value |"


def test_metrics_diff_between_commits_and_against_the_workspace(history: E2EProject) -> None:
    between = history.pivot("metrics", "diff", "HEAD~2", "HEAD", "--json").json
    assert between["old"]["rev"] == "HEAD~2" and len(between["old"]["commit"]) == 40
    assert between["diff"] == [
        {
            "path": "metrics/train.json",
            "key": "loss",
            "old": 0.25,
            "new": 0.0909,
            "change": -0.1591,
        },
        {
            "path": "metrics/train.json",
            "key": "scores.accuracy",
            "old": 0.75,
            "new": 0.9091,
            "change": 0.1591,
        },
    ]
    default = history.pivot("metrics", "diff", "--json").json
    assert default["new"] == {"rev": "workspace", "commit": None}
    assert [(c["key"], c["old"], c["new"]) for c in default["diff"]] == [
        ("loss", 0.0909, 0.0625),
        ("scores.accuracy", 0.9091, 0.9375),
    ]
    text = history.pivot("metrics", "diff").stdout
    assert "HEAD (" in text and "workspace" in text
    assert "loss             0.0909" in text and "-0.0284" in text
    # unchanged values only with --all
    assert "rows" not in text
    assert "rows" in history.pivot("metrics", "diff", "--all").stdout


def test_a_revision_without_locks_shows_a_dash(history: E2EProject) -> None:
    result = history.pivot("metrics", "diff", "HEAD~3", "HEAD", "--json").json
    assert {c["key"]: c["old"] for c in result["diff"]} == {
        "loss": None,
        "rows": None,
        "scores.accuracy": None,
    }
    text = history.pivot("params", "diff", "HEAD~3", "HEAD~2").stdout
    assert "train  lr      —" in text


def test_params_show_and_diff(history: E2EProject) -> None:
    shown = history.pivot("params", "show", "--json").json
    assert shown == {
        "params": [
            {"stage": "prepare", "recorded": True, "params": {}},
            {"stage": "train", "recorded": True, "params": {"epochs": 5, "lr": 0.3}},
            # audit failed in the workspace run: its lock still records the last success
            {"stage": "audit", "recorded": True, "params": {"strict": False}},
        ]
    }
    assert "train  lr      0.3" in history.pivot("params", "show", "train").stdout
    diff = history.pivot("params", "diff", "HEAD~2", "HEAD", "--json").json
    assert diff["diff"] == [
        {"stage": "train", "param": "epochs", "old": 3, "new": 5, "change": 2},
        {"stage": "train", "param": "lr", "old": 0.1, "new": 0.2, "change": 0.1},
    ]
    assert "| train | lr | 0.2 | 0.3 | +0.1 |" in history.pivot("params", "diff", "--md").stdout
    workspace = history.pivot("params", "diff", "--json").json["diff"]
    assert workspace == [{"stage": "train", "param": "lr", "old": 0.2, "new": 0.3, "change": 0.1}]


def test_bad_revision_is_a_clear_error(history: E2EProject) -> None:
    result = history.pivot("metrics", "diff", "no-such-branch", expect=2)
    assert "'no-such-branch' is not a git revision" in result.stderr
    assert "Traceback" not in result.stderr


def test_dag_marks_stale_stages_in_every_format(history: E2EProject) -> None:
    # the workspace run failed in audit, so audit is stale
    result = history.pivot("dag", "--json").json
    assert result["kind"] == "stages"
    assert [(n["id"], n["stale"]) for n in result["nodes"]] == [
        ("prepare", False),
        ("train", False),
        ("audit", True),
    ]
    assert {(e["from"], e["to"]) for e in result["edges"]} == {
        ("prepare", "train"),
        ("train", "audit"),
    }
    text = history.pivot("dag").stdout
    assert "* audit    <- train" in text and "1 stale" in text
    mermaid = history.pivot("dag", "--mermaid").stdout
    assert mermaid.startswith("flowchart TD") and "n0 --> n1" in mermaid and ":::stale" in mermaid
    dot = history.pivot("dag", "--dot", "--outs").stdout
    assert '"data/clean.csv" -> "metrics/train.json" [label="train"];' in dot
    outs = history.pivot("dag", "--outs", "--json", "train").json
    assert {n["id"] for n in outs["nodes"]} >= {"data/raw.csv", "plots/loss.png"}
    assert "audit.json" not in {n["id"] for n in outs["nodes"]}


def test_list_names_deps_outs_params_and_source(history: E2EProject) -> None:
    stages = {s["name"]: s for s in history.pivot("list", "--json").json["stages"]}
    train = stages["train"]
    assert train["deps"] == ["data/clean.csv"]
    assert {o["path"]: o["kind"] for o in train["outs"]} == {
        "metrics/train.json": "metric",
        "plots/loss.csv": "plot",
        "plots/loss.png": "plot",
    }
    assert train["params_class"] == "pipeline.TrainParams"
    assert train["params"] == {"lr": 0.3, "epochs": 5}
    assert train["source"].startswith("pipeline.py:") and train["upstream"] == ["prepare"]
    text = history.pivot("list").stdout
    assert (
        "train  (pipeline.train, pipeline.py:" in text and "TrainParams(lr=0.3, epochs=5)" in text
    )


def test_history_and_show_record_every_run(history: E2EProject) -> None:
    runs = history.pivot("history", "--json").json["runs"]
    assert len(runs) == 4
    newest, first = runs[0], runs[-1]
    assert newest["ok"] is False and newest["counts"]["failed"] == 1
    assert newest["git"]["dirty"] is True and newest["command"] == "pivot repro"
    assert first["counts"]["ran"] == 3 and first["git"]["dirty"] is False
    assert history.pivot("history", "-n", "1", "--json").json["runs"][0]["id"] == newest["id"]
    detail = history.pivot("show", "--json").json
    assert detail["id"] == newest["id"]
    stages = {s["stage"]: s for s in detail["stages"]}
    assert stages["train"]["status"] == "ran" and stages["train"]["reasons"] == [
        "params changed: lr"
    ]
    assert stages["audit"]["status"] == "failed"
    assert "ValueError: accuracy 0.9375 is below 0.99" in stages["audit"]["error"]
    assert stages["prepare"]["status"] == "skipped"
    by_prefix = history.pivot("show", first["id"][:22], "--json").json
    assert by_prefix["id"] == first["id"]
    text = history.pivot("show").stdout
    assert "audit: failed" in text and "ValueError: accuracy" in text
    assert "FAILED" in history.pivot("history").stdout
    missing = history.pivot("show", "nope", expect=2)
    assert "matches no recorded run" in missing.stderr


def test_reading_commands_change_nothing(history: E2EProject) -> None:
    before = _snapshot(history)
    for args in (["metrics", "diff", "HEAD~3"], ["params", "show"], ["dag", "--outs"], ["list"]):
        history.pivot(*args)
    assert _snapshot(history) == before


RUN_KEYS = {
    "id", "started", "duration", "command", "git", "pivot_version", "python_version", "ok",
    "interrupted", "counts", "warnings",
}  # fmt: skip
CONTRACT: dict[tuple[str, ...], dict[str, set[str]]] = {
    # command -> {JSON pointer-ish path: exact keys} (docs/results.md documents these shapes)
    ("metrics", "show"): {"": {"metrics"}, "metrics[]": {"path", "stage", "values", "error"}},
    ("metrics", "diff"): {
        "": {"old", "new", "diff"},
        "old": {"rev", "commit"},
        "diff[]": {"path", "key", "old", "new", "change"},
    },
    ("params", "show"): {"": {"params"}, "params[]": {"stage", "recorded", "params"}},
    ("params", "diff", "HEAD~2"): {
        "": {"old", "new", "diff"},
        "diff[]": {"stage", "param", "old", "new", "change"},
    },
    ("dag",): {"": {"kind", "nodes", "edges"}, "nodes[]": {"id", "kind", "stale", "reasons"}},
    ("dag", "--outs"): {"nodes[]": {"id", "kind", "stale", "reasons", "stage"}},
    ("list",): {
        "": {"stages"},
        "stages[]": {
            "name",
            "function",
            "source",
            "deps",
            "outs",
            "params_class",
            "params",
            "upstream",
        },
    },
    ("history",): {"": {"runs"}, "runs[]": RUN_KEYS},
    ("show",): {
        "": RUN_KEYS | {"stages"},
        "stages[]": {"stage", "action", "status", "reasons", "duration", "error"},
    },
    ("plots", "show"): {
        "": {"page", "plots"},
        "plots[]": {"path", "stage", "kind", "x", "y", "template", "revisions"},
    },
    ("report",): {
        "": {
            "page",
            "git",
            "baselines",
            "last_run",
            "stages",
            "metrics",
            "params",
            "plots",
            "outputs",
            "failures",
        },
        "stages[]": {"stage", "last_status", "duration", "why", "stale"},
        "metrics[]": {"path", "key", "baselines", "current", "change", "best", "best_at"},
        "params[]": {"stage", "param", "baselines", "current"},
        "outputs[]": {"path", "stage", "size", "hash", "state"},
        "failures[]": {"stage", "error"},
    },
}


@pytest.mark.parametrize("command", list(CONTRACT), ids=" ".join)
def test_json_output_is_the_documented_contract(
    history: E2EProject, command: tuple[str, ...]
) -> None:
    document = history.pivot(*command, "--json").json
    for where, keys in CONTRACT[command].items():
        if not where:
            items = [document]
        elif where.endswith("[]"):
            items = document[where[:-2]]
            assert items, f"{where} is empty"
        else:
            items = [document[where]]
        for item in items:
            assert set(item) == keys, f"`pivot {' '.join(command)} --json` {where or 'top'}"
