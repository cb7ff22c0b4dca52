"""A stage's last good outputs, kept aside while it runs: put back if it fails, dropped if it
succeeds, so a failing (or interrupted) stage never loses the outputs its lock file records.

Outputs are moved (renamed, so it costs nothing) into `<scratch>/` under a name that says where
they came from, `=<token>=<percent-quoted path>`: no directory and no index file is made (creating
a file is a dear system call). A path too long for one file name waits instead in
`<scratch>/<stage>.<token>/files/<path>`, named in that directory's `paths.json`. An output the
stage reads back (IncrementalOut) is copied instead. A backup left by a killed run is put back
by `recover` (with the project lock held) wherever the workspace has nothing at that path. A
kept file holding exactly the bytes the run gave for its path goes back in place
(`put_back_same`) rather than a new file being made and the kept one dropped.

Dropping a kept file costs an unlink that frees its blocks (0.5-2 ms here); a pool worker
renames it instead into `<scratch>/discarded/`, which nothing is ever put back from, and leaves
the unlink to a thread off the stage's path (`discard(later=...)`); the run removes what is
still there when it ends (`remove_discarded`). Imports nothing of Pivot's but the store's fs
helpers.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Collection
from pathlib import Path
from urllib.parse import quote, unquote

from pivot import fs

__all__ = ["DISCARDED", "Backup", "recover", "remove_discarded"]

DISCARDED = "discarded"
"""The directory of `scratch` holding kept files of successful runs, only waiting to be removed
(a directory with no index: `recover` removes it whole)."""
_INDEX = "paths.json"
_NAME_MAX = 240  # bytes of a flat stash name (file systems allow 255)
_FLAT = re.compile(r"^=[0-9a-f]{12}=(.+)$", re.DOTALL)  # stage names never start with "="


class Backup:
    """Previous outputs of one stage run, kept in `scratch` until `restore` or `discard`.

    Cheap to make: a first run, with no previous outputs, costs a `lstat` per output and no
    more (the stash names are made only when something is moved)."""

    def __init__(self, root: Path | str, scratch: Path | str, stage: str) -> None:
        self.root = os.fspath(root)
        self.scratch = os.fspath(scratch)
        self.stage = stage
        self.token = ""  # made with the first stash
        self.stashes: dict[str, str] = {}  # output path -> where it waits
        self.kept: dict[str, os.stat_result] = {}  # output path -> its lstat when moved
        self.indexed: list[str] = []  # the paths named in `directory`'s index

    @property
    def directory(self) -> str:
        """Where paths too long for a flat name wait (with their index)."""
        return os.path.join(self.scratch, f"{self.stage}.{self.token}")

    def move(self, path: str, st: os.stat_result | None = None) -> None:
        """Set aside the output at `path`, if there is one, by renaming it (free: the workspace
        path is then empty for the stage). `st`: its `lstat`, when the caller has it."""
        source = self._workspace(path)
        if st is None:
            try:
                st = os.lstat(source)
            except FileNotFoundError:
                return
        stash = self._stash(path)
        try:
            try:
                os.rename(source, stash)
            except FileNotFoundError:  # no scratch directory yet (or `source` went meanwhile)
                fs.make_parent(stash)
                os.rename(source, stash)
            self.kept[path] = st
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            try:  # another file system (a mount inside the project): copy, then remove
                fs.make_parent(stash)
                shutil.move(source, stash)
            except BaseException:
                if os.path.lexists(source):  # still in its place: drop the partial copy
                    fs.remove_path(Path(stash))
                raise

    def put_back_same(self, path: str, data: bytes, made: tuple[int, int, int]) -> bool:
        """Put the output moved aside from `path` back in its place when it is a plain file
        holding exactly `data` (what the run just gave for `path`), with the (mode, uid, gid)
        `made` that a new file there gets, and set its mtime to now: the workspace then holds
        what writing `data` anew would leave, without a file made and the kept one dropped
        (each a dear system call). False, with nothing moved, otherwise."""
        st = self.kept.get(path)
        stash = self.stashes.get(path)
        if (
            st is None
            or stash is None
            or st.st_nlink != 1
            or st.st_size != len(data)
            or (st.st_mode, st.st_uid, st.st_gid) != made
            or not stat.S_ISREG(st.st_mode)
        ):
            return False
        try:
            if fs.read_bytes(stash) != data:
                return False
            os.utime(stash)
            os.replace(stash, self._workspace(path))
        except OSError:  # e.g. the stage made a directory there: the caller writes `data`
            return False
        del self.stashes[path], self.kept[path]
        return True

    def copy(self, path: str) -> None:
        """Set aside a copy of the output file at `path` (the stage still finds it in place)."""
        source = self._workspace(path)
        if os.path.isfile(source):
            stash = self._stash(path)
            fs.make_parent(stash)
            shutil.copyfile(source, stash)

    def _workspace(self, path: str) -> str:
        """Where output `path` is in the workspace (a directory's without its trailing `/`)."""
        return os.path.join(self.root, path.rstrip("/"))

    def _stash(self, path: str) -> str:
        """Where `path` waits: a name in `scratch` that says which path it is (or, too long for
        a name, a place in `directory` named in its index before anything is moved there)."""
        self.token = self.token or fs.random_hex(12)
        name = f"={self.token}={quote(path, safe='')}"
        if len(name.encode()) <= _NAME_MAX:
            stash = os.path.join(self.scratch, name)  # (`scratch` is made by `move` if missing)
        else:
            stash = os.path.join(self.directory, "files", path.rstrip("/"))
            self.indexed.append(path)
            os.makedirs(os.path.dirname(stash), exist_ok=True)
            fs.atomic_write_text(Path(self.directory, _INDEX), json.dumps(self.indexed))
        self.stashes[path] = stash
        return stash

    def restore(self) -> None:
        """Put every kept output back in place of whatever the failed run left there (never
        raises: what cannot be put back now stays in the backup for `recover`)."""
        kept = False
        for path, stash in self.stashes.items():
            if not os.path.lexists(stash):
                continue  # setting it aside failed: it never left its place
            target = self._workspace(path)
            try:
                fs.remove_path(Path(target))
                fs.make_parent(target)
                os.replace(stash, target)
            except OSError:  # left in the backup: the next locked command puts it back
                kept = True
        if not kept:
            self.discard()

    def discard(self, later: Callable[[str], None] | None = None) -> None:
        """Drop the kept outputs (the run succeeded). With `later`, each output file kept under
        a flat name is renamed into `DISCARDED` (from then on it is never put back) and handed
        to `later` to remove; directories and long paths are removed now."""
        for path, stash in self.stashes.items():
            if later is not None and path not in self.indexed and not path.endswith("/"):
                thrown = self._throw_away(stash)
                if thrown is not None:
                    later(thrown)
                    continue
            fs.remove_path(Path(stash))
        if self.indexed:
            fs.remove_path(Path(self.directory))

    def _throw_away(self, stash: str) -> str | None:
        """Rename `stash` into `DISCARDED`: its new path (None when it could not be)."""
        trash = os.path.join(self.scratch, DISCARDED)
        thrown = os.path.join(trash, os.path.basename(stash))
        try:
            os.rename(stash, thrown)
        except FileNotFoundError:  # (made by the first stage of a run that discards)
            try:
                os.makedirs(trash, exist_ok=True)
                os.rename(stash, thrown)
            except OSError:
                return None
        except OSError:
            return None
        return thrown


def remove_discarded(scratch: Path | str) -> None:
    """Remove what runs discarded and is still waiting in `DISCARDED` (a file that a thread
    removing them removed first is fine)."""
    trash = os.path.join(scratch, DISCARDED)
    try:
        names = os.listdir(trash)
    except FileNotFoundError:
        return
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            fs.remove_path(Path(trash, name))
    with contextlib.suppress(OSError):  # (left non-empty: `recover` removes it whole)
        os.rmdir(trash)


def recover(root: Path, scratch: Path, allowed: Collection[str]) -> list[str]:
    """Put back the outputs of backups that killed runs left under `scratch` where the
    workspace has nothing at their path, then delete the backups. Only paths in `allowed` (the
    outputs the pipeline declares) are put back. Returns the paths put back."""
    restored: list[str] = []
    if not Path(scratch).is_dir():
        return restored
    for entry in sorted(Path(scratch).iterdir()):
        flat = _FLAT.match(entry.name)
        if flat is not None:
            _put_back(Path(root), unquote(flat[1]), entry, allowed, restored)
        elif entry.is_dir():
            try:
                paths = json.loads((entry / _INDEX).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                paths = []
            for path in paths if isinstance(paths, list) else []:
                stash = entry / "files" / str(path).rstrip("/")
                _put_back(Path(root), str(path), stash, allowed, restored)
        else:
            continue
        fs.remove_path(entry)
    return restored


def _put_back(
    root: Path, path: str, stash: Path, allowed: Collection[str], done: list[str]
) -> None:
    """Move `stash` back to `path` if the pipeline declares it and the workspace has nothing
    there."""
    target = root / path
    if path not in allowed or os.path.lexists(target) or not os.path.lexists(stash):
        return
    fs.check_inside(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stash, target)
    done.append(path)
