"""`gitignore.ignore_line`: a pattern matching exactly one project path, anchored at the root."""

from __future__ import annotations

import pytest

from pivot.store.gitignore import ignore_line


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("out/s0001.txt", "/out/s0001.txt"),
        ("data/parts [v1]/", "/data/parts \\[v1\\]/"),
        ("a#b!c*d?e\\f", "/a\\#b\\!c\\*d\\?e\\\\f"),
        ("ends with space ", "/ends with space\\ "),
    ],
)
def test_a_line_escapes_what_gitignore_reads_specially(path: str, line: str) -> None:
    assert ignore_line(path) == line
