"""project: the `executor:` and `cluster:` settings of `.pivot/config.yaml`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot import errors, project


def _config(tmp_path: Path, text: str) -> project.Config:
    project.init_project(tmp_path)
    (tmp_path / ".pivot" / "config.yaml").write_text(text)
    return project.load_project(tmp_path).config


def test_defaults_run_locally_and_upload_code(tmp_path: Path) -> None:
    config = _config(tmp_path, "jobs: 2\n")
    assert config.executor == "local"
    assert config.cluster == project.ClusterConfig(remote=None, upload_code=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("local", "local"),
        ("dask", "dask"),
        ("dask://sched:8786", "tcp://sched:8786"),
        ("tcp://10.1.2.3:8786", "tcp://10.1.2.3:8786"),
        ("tls://sched:8786", "tls://sched:8786"),
    ],
)
def test_executor_values(tmp_path: Path, value: str, expected: str) -> None:
    assert _config(tmp_path, f"executor: {value}\n").executor == expected


def test_cluster_settings(tmp_path: Path) -> None:
    config = _config(tmp_path, "cluster:\n  remote: store\n  code: installed\n")
    assert config.cluster == project.ClusterConfig(remote="store", upload_code=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("executor: sched:8786\n", "not an executor"),
        ("executor: 3\n", "executor must be"),
        ("cluster:\n  code: ship\n", "cluster.code must be upload or installed"),
        ("cluster:\n  workers: 3\n", "cluster must be a mapping"),
        ("cluster:\n  remote: [a]\n", "cluster.remote must be"),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        _config(tmp_path, text)
