"""The user's modules always run as their source reads now, even with .pyc files around."""

from __future__ import annotations

import marshal
import os
import shutil
import sys
from pathlib import Path

import pytest

from pivot import discovery, project

PIPELINE = """
from helpers import answer
from pivot.pipeline import Pipeline

pipeline = Pipeline("fresh")
"""


def _load_answer(root: Path) -> int:
    found = discovery.load_pipeline(project.load_project(root))
    assert found.name == "fresh"
    return int(sys.modules["helpers"].answer())


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # the real default for users
    monkeypatch.setattr(sys, "path_hooks", list(sys.path_hooks))
    monkeypatch.setattr(sys, "path_importer_cache", dict(sys.path_importer_cache))
    project.init_project(tmp_path)
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "helpers.py").write_text("def answer():\n    return 1\n")
    yield tmp_path
    sys.modules.pop("helpers", None)


def test_an_edit_keeping_size_and_mtime_is_seen(root: Path) -> None:
    helper = root / "helpers.py"
    assert _load_answer(root) == 1
    assert list((root / "__pycache__").glob("helpers.*.pyc")), "bytecode was cached"
    before = helper.stat()

    helper.write_text("def answer():\n    return 2\n")  # same size
    os.utime(helper, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime

    assert _load_answer(root) == 2


def test_a_timestamp_pyc_left_by_plain_python_is_not_trusted(root: Path) -> None:
    import py_compile

    helper = root / "helpers.py"
    pyc = py_compile.compile(str(helper), doraise=True)  # timestamp-based, as `import` writes
    before = helper.stat()
    helper.write_text("def answer():\n    return 3\n")
    os.utime(helper, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert Path(pyc).exists()

    assert _load_answer(root) == 3


def test_without_bytecode_writing_it_goes_to_the_project_pivot_dir(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PYTHONDONTWRITEBYTECODE` (common in containers): nothing is written beside the sources,
    the checked bytecode lives in `.pivot/pycache/` (git-ignored), and an edit is still seen."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    helper = root / "helpers.py"

    assert _load_answer(root) == 1

    assert not (root / "__pycache__").exists()
    kept = list((root / discovery.BYTECODE_DIR).rglob("helpers.*.pyc"))
    assert len(kept) == 1
    assert "/pycache/" in (root / ".pivot" / ".gitignore").read_text().splitlines()
    header = kept[0].read_bytes()[:16]
    planted = compile("def answer():\n    return 7\n", str(helper), "exec")
    kept[0].write_bytes(header + marshal.dumps(planted))  # what the next load must read
    assert _load_answer(root) == 7, "the kept bytecode is used while the source is unchanged"

    before = helper.stat()
    helper.write_text("def answer():\n    return 4\n")  # same size
    os.utime(helper, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime

    assert _load_answer(root) == 4
    assert kept[0].read_bytes()[:16] != header, "the new source's bytecode replaced the old"


@pytest.mark.parametrize("write_beside", [True, False], ids=["__pycache__", ".pivot-pycache"])
def test_bytecode_of_a_copied_project_names_the_copy(
    root: Path, monkeypatch: pytest.MonkeyPatch, write_beside: bool
) -> None:
    """A project copied or moved with its bytecode: the code names the files it runs from now
    (fingerprints, observation and tracebacks read `co_filename`)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", not write_beside)
    assert _load_answer(root) == 1
    copy = root.with_name(root.name + "-copy")
    shutil.copytree(root, copy)
    sys.modules.pop("helpers", None)

    assert _load_answer(copy) == 1

    answer = sys.modules["helpers"].answer
    assert answer.__code__.co_filename == str(copy / "helpers.py")
