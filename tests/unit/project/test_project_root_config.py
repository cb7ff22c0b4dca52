"""project: finding the root, `init_project`, and reading `.pivot/config.yaml`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot import errors, project


def test_init_creates_the_layout(tmp_path: Path) -> None:
    made = project.init_project(tmp_path)

    assert made.root == tmp_path
    assert made.pivot_dir == tmp_path / ".pivot"
    assert made.stages_dir.is_dir() and made.cache_dir.is_dir()
    ignored = (made.pivot_dir / ".gitignore").read_text().splitlines()
    assert "/cache/" in ignored and "/state.db" in ignored
    assert (tmp_path / ".pivotignore").is_file()
    assert made.config == project.Config()
    assert made.pipeline_file == tmp_path / "pipeline.py"


def test_init_twice_is_an_error_naming_force(tmp_path: Path) -> None:
    project.init_project(tmp_path)

    with pytest.raises(errors.AlreadyInitializedError, match="--force"):
        project.init_project(tmp_path)


def test_init_force_rewrites_config_but_keeps_user_files(tmp_path: Path) -> None:
    made = project.init_project(tmp_path)
    config = made.pivot_dir / "config.yaml"
    default = config.read_text()
    config.write_text("jobs: 4\n")
    (tmp_path / ".pivotignore").write_text("mine/\n")
    (made.stages_dir / "a.lock").write_text("{}")

    again = project.init_project(tmp_path, force=True)

    assert config.read_text() == default and again.config.jobs is None
    assert (tmp_path / ".pivotignore").read_text() == "mine/\n"
    assert (made.stages_dir / "a.lock").read_text() == "{}"


def test_find_root_from_a_subdirectory_is_the_top_most(tmp_path: Path) -> None:
    project.init_project(tmp_path)
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    (tmp_path / "a" / ".pivot").mkdir()

    assert project.find_root(inner) == tmp_path
    assert project.load_project(inner).root == tmp_path


def test_find_root_outside_a_project(tmp_path: Path) -> None:
    with pytest.raises(errors.NotInitializedError, match="pivot init"):
        project.find_root(tmp_path)


def test_find_root_defaults_to_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project.init_project(tmp_path)
    monkeypatch.chdir(tmp_path)

    assert project.find_root() == tmp_path


def _load(tmp_path: Path, text: str) -> project.Config:
    project.init_project(tmp_path)
    (tmp_path / ".pivot" / "config.yaml").write_text(text)
    return project.load_project(tmp_path).config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", project.Config()),
        ("jobs: 3\n", project.Config(jobs=3)),
        ("cache:\n  link: hardlink\n", project.Config(link_modes=("hardlink",))),
        (
            "cache:\n  link: [symlink, copy]\nfingerprint:\n  packages: true\n",
            project.Config(link_modes=("symlink", "copy"), fingerprint_packages=True),
        ),
        ("remotes: {}\n", project.Config()),
    ],
)
def test_valid_configs(tmp_path: Path, text: str, expected: project.Config) -> None:
    assert _load(tmp_path, text) == expected


def test_missing_config_file_means_defaults(tmp_path: Path) -> None:
    project.init_project(tmp_path)
    (tmp_path / ".pivot" / "config.yaml").unlink()

    assert project.load_project(tmp_path).config == project.Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: [1\n", "not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
        ("job: 3\n", "unknown setting"),
        ("jobs: 0\n", "jobs must be a positive integer"),
        ("jobs: true\n", "jobs must be a positive integer"),
        ("jobs: '2'\n", "jobs must be a positive integer"),
        ("cache:\n  link: [teleport]\n", "cache.link"),
        ("cache:\n  link: []\n", "cache.link"),
        ("fingerprint:\n  packages: maybe\n", "fingerprint.packages"),
    ],
)
def test_invalid_configs_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message) as info:
        _load(tmp_path, text)

    assert "config.yaml" in str(info.value)
