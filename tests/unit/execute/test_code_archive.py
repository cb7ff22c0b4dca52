"""The zip of a project's code that a cluster run uploads: Python files only, reproducible."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from pivot.execute.cluster import code_archive


def _names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_holds_the_python_files_and_nothing_else(tmp_path: Path) -> None:
    files = {
        "pipeline.py": "x = 1\n",
        "pkg/__init__.py": "",
        "pkg/helpers.py": "def f(): ...\n",
        "data/big.csv": "a,b\n1,2\n",
        ".pivot/stages/x.lock": "{}",
        ".git/config": "",
        ".venv/lib/site.py": "",
        "env/pyvenv.cfg": "",
        "env/lib/mod.py": "",
        "pkg/__pycache__/helpers.cpython-311.pyc": "",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert _names(code_archive(tmp_path)) == ["pipeline.py", "pkg/__init__.py", "pkg/helpers.py"]


def test_same_sources_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    first = code_archive(tmp_path)
    (tmp_path / "a.py").write_text("A = 1\n")  # rewritten: a new mtime, same content
    assert code_archive(tmp_path) == first
    (tmp_path / "a.py").write_text("A = 2\n")
    assert code_archive(tmp_path) != first
