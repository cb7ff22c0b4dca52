"""A stage's last good outputs, kept aside while it runs: put back if it fails, dropped if it
succeeds, so a failing (or interrupted) stage never loses the outputs its lock file records.

Outputs are moved (renamed, so it costs nothing) into `<scratch>/<stage>.<random>/` with a
`paths.json` naming them; an output the stage reads back (IncrementalOut) is copied instead. A
backup left by a killed run is put back by `recover` (with the project lock held) wherever the
workspace has nothing at that path. Imports nothing of Pivot's but the store's fs helpers.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Collection
from pathlib import Path

from pivot import fs

__all__ = ["Backup", "recover"]

_INDEX = "paths.json"


class Backup:
    """Previous outputs of one stage run, kept under `directory` until `restore` or `discard`."""

    def __init__(self, root: Path, scratch: Path, stage: str) -> None:
        self.root = Path(root)
        self.directory = Path(scratch) / f"{stage}.{os.urandom(6).hex()}"
        self.saved: list[str] = []

    def move(self, path: str) -> None:
        """Set aside the output at `path`, if there is one, by renaming it (free: the workspace
        path is then empty for the stage)."""
        source, stash = self.root / path, self._stash(path)
        if not os.path.lexists(source):
            return
        self._note(path)
        try:
            os.rename(source, stash)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            try:  # another file system (a mount inside the project): copy, then remove
                shutil.move(source, stash)
            except BaseException:
                if os.path.lexists(source):  # still in its place: drop the partial copy
                    fs.remove_path(stash)
                raise

    def copy(self, path: str) -> None:
        """Set aside a copy of the output file at `path` (the stage still finds it in place)."""
        if os.path.isfile(self.root / path):
            self._note(path)
            shutil.copyfile(self.root / path, self._stash(path))

    def _note(self, path: str) -> None:
        """Record `path` in the index before touching it, so a killed run can be recovered."""
        self.saved.append(path)
        self._stash(path).parent.mkdir(parents=True, exist_ok=True)
        fs.atomic_write_text(self.directory / _INDEX, json.dumps(self.saved))

    def restore(self) -> None:
        """Put every kept output back in place of whatever the failed run left there (never
        raises: what cannot be put back now stays in the backup for `recover`)."""
        kept = False
        for path in self.saved:
            if not os.path.lexists(self._stash(path)):
                continue  # setting it aside failed: it never left its place
            try:
                fs.remove_path(self.root / path)
                (self.root / path).parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._stash(path), self.root / path)
            except OSError:  # left in the backup: the next locked command puts it back
                kept = True
        if not kept:
            self.discard()

    def discard(self) -> None:
        fs.remove_path(self.directory)

    def _stash(self, path: str) -> Path:
        return self.directory / "files" / path.rstrip("/")


def recover(root: Path, scratch: Path, allowed: Collection[str]) -> list[str]:
    """Put back the outputs of backups that killed runs left under `scratch` where the
    workspace has nothing at their path, then delete the backups. Only paths in `allowed` (the
    outputs the pipeline declares) are put back. Returns the paths put back."""
    restored: list[str] = []
    if not Path(scratch).is_dir():
        return restored
    for directory in sorted(path for path in Path(scratch).iterdir() if path.is_dir()):
        try:
            paths = json.loads((directory / _INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            paths = []
        for path in paths if isinstance(paths, list) else []:
            stash = directory / "files" / str(path).rstrip("/")
            target = Path(root) / str(path)
            if path not in allowed or os.path.lexists(target) or not os.path.lexists(stash):
                continue
            fs.check_inside(Path(root), str(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stash, target)
            restored.append(str(path))
        fs.remove_path(directory)
    return restored
