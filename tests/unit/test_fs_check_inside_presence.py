"""`fs.check_inside` says whether the path it checked exists (what a caller needs next, from
the same look-ups), on its quick path and its resolving one alike."""

from __future__ import annotations

from pathlib import Path

from pivot import fs


def test_check_inside_says_whether_the_path_exists(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "real" / "sub").mkdir(parents=True)
    (root / "real" / "a.txt").write_text("a")
    (root / "in_dir").symlink_to(root / "real", target_is_directory=True)
    (root / "real" / "dangling").symlink_to(root / "nowhere")

    present = ("real/a.txt", "real/sub/", "real", "in_dir/a.txt", "in_dir", "real/dangling")
    absent = ("a.txt", "real/b.txt", "not/yet/made.txt", "in_dir/b.txt", "real/sub/x/")
    assert [fs.check_inside(root, path) for path in present] == [True] * len(present)
    assert [fs.check_inside(root, path) for path in absent] == [False] * len(absent)
    assert fs.check_inside(str(root), "./real/a.txt") is True  # not plain: resolved
