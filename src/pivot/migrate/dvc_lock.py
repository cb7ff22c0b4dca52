"""`dvc.lock`: which DVC stages are up to date in the workspace (same command, params and the
md5 of every dep and out), so an imported project records them instead of re-running them.

Imports of Pivot: `pivot.migrate.dvc_yaml`, `pivot.pipeline_yaml.marks`, `pivot.errors`.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot.errors import PipelineFileError
from pivot.migrate.dvc_yaml import DvcStage
from pivot.pipeline_yaml.marks import read_marked

__all__ = ["LockCheck", "read_dvc_lock"]

_CHUNK = 1 << 20


def _md5(path: Path, *, text_mode: bool) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        if text_mode:  # DVC 2 hashed text files with dos2unix line endings
            data = handle.read()
            digest.update(data.replace(b"\r\n", b"\n") if b"\x00" not in data[:8192] else data)
        else:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


class LockCheck:
    """Compares DVC's recorded state with the workspace, hashing each file at most once."""

    def __init__(self, root: Path, lock: Mapping[str, Any]) -> None:
        self.root = root
        self.stages: Mapping[str, Any] = lock.get("stages") or {}
        self._hashes: dict[tuple[str, bool], str | None] = {}

    def file_md5(self, relative: str, *, text_mode: bool) -> str | None:
        key = (relative, text_mode)
        if key not in self._hashes:
            full = self.root / relative
            self._hashes[key] = _md5(full, text_mode=text_mode) if full.is_file() else None
        return self._hashes[key]

    def directory_matches(self, relative: str, digest: str) -> bool:
        """A `.dir` hash: compare the workspace with the manifest in DVC's cache."""
        stem = digest.removesuffix(".dir")
        candidates = [
            self.root / ".dvc" / "cache" / "files" / "md5" / stem[:2] / (stem[2:] + ".dir"),
            self.root / ".dvc" / "cache" / stem[:2] / (stem[2:] + ".dir"),
        ]
        manifest = next((p for p in candidates if p.is_file()), None)
        full = self.root / relative
        if manifest is None or not full.is_dir():
            return False
        listed = {item["relpath"]: item["md5"] for item in json.loads(manifest.read_text())}
        present = {
            Path(base, name).relative_to(full).as_posix()
            for base, _, names in os.walk(full)
            for name in names
        }
        if present != set(listed):
            return False
        return all(
            self.file_md5(f"{relative}/{name}", text_mode=False) == md5
            or self.file_md5(f"{relative}/{name}", text_mode=True) == md5
            for name, md5 in listed.items()
        )

    def entry_matches(self, wdir: str, item: Mapping[str, Any]) -> bool:
        relative = posixpath.normpath(posixpath.join(wdir, str(item.get("path"))))
        digest = str(item.get("md5") or item.get("hash") or "")
        if not digest or item.get("hash") not in (None, "md5"):
            return False
        if digest.endswith(".dir"):
            return self.directory_matches(relative, digest)
        legacy = "hash" not in item
        return self.file_md5(relative, text_mode=False) == digest or (
            legacy and self.file_md5(relative, text_mode=True) == digest
        )

    def why_stale(self, stage: DvcStage, params: Mapping[str, Mapping[str, Any]]) -> str | None:
        """None when dvc.lock records `stage` exactly as the workspace is, else the reason."""
        entry = self.stages.get(stage.name)
        if not isinstance(entry, Mapping):
            return "not in dvc.lock"
        cmd = entry.get("cmd")
        cmd = " && ".join(cmd) if isinstance(cmd, list) else cmd
        if cmd != stage.resolved_cmd:
            return "its command differs from the one dvc.lock records"
        recorded_deps = {str(d.get("path")): d for d in entry.get("deps") or []}
        recorded_outs = {str(o.get("path")): o for o in entry.get("outs") or []}
        if set(recorded_deps) != set(stage.deps):
            return "its deps differ from the ones dvc.lock records"
        if set(recorded_outs) != {out.path for out in stage.outs}:
            return "its outputs differ from the ones dvc.lock records"
        if dict(entry.get("params") or {}) != {k: dict(v) for k, v in params.items() if v}:
            return "its params differ from the values dvc.lock records"
        for kind, items in (("dependency", recorded_deps), ("output", recorded_outs)):
            for path, item in items.items():
                if not self.entry_matches(stage.wdir, item):
                    return f"{kind} '{path}' is missing or differs from dvc.lock (run `dvc pull`?)"
        return None


def read_dvc_lock(root: Path, relative: Path) -> LockCheck | None:
    """The dvc.lock at `root/relative`, or None when there is none (or it is unreadable)."""
    if not (root / relative).is_file():
        return None
    try:
        data = read_marked(root / relative, relative).data
    except PipelineFileError:
        return None
    return LockCheck(root, data) if isinstance(data, Mapping) else None
