"""Fixture projects for the fingerprint tests: small user code bases written into tmp_path.

Each version of a project goes to its own directory and is imported with its own `sys.path`
entry; its modules are removed from `sys.modules` afterwards, so two versions of `pipeline.py`
give comparable manifests (same module names) without touching each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pivot.fingerprint import Fingerprint, SourceStats, fingerprint_stage

Files = Mapping[str, str]


@contextlib.contextmanager
def imported_from(directory: Path) -> Iterator[None]:
    """Make `directory` importable; forget every module loaded from it afterwards."""
    entry = str(directory)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(entry)
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and Path(path).is_relative_to(directory):
                del sys.modules[name]


def write_files(directory: Path, files: Files) -> None:
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def resolve(spec: str) -> Any:
    """`"module:attr.attr"` -> the object (after the project is importable)."""
    module_name, _, attributes = spec.partition(":")
    found: Any = importlib.import_module(module_name)
    for attribute in attributes.split("."):
        found = getattr(found, attribute)
    return found


def edit(files: Files, path: str, old: str, new: str) -> dict[str, str]:
    """A copy of `files` with `old` replaced by `new` in `path` (which must contain `old`)."""
    text = textwrap.dedent(files[path]).lstrip("\n")
    assert old in text, f"{old!r} not in {path}"
    return {**files, path: text.replace(old, new)}


def changed(before: Fingerprint, after: Fingerprint) -> set[str]:
    """Entries added, removed or with another hash."""
    names = set(before.manifest) | set(after.manifest)
    return {n for n in names if before.manifest.get(n) != after.manifest.get(n)}


@dataclasses.dataclass
class Projects:
    """Writes versions of a fixture project and fingerprints a stage of each."""

    base: Path
    count: int = 0

    def new_directory(self) -> Path:
        self.count += 1
        directory = self.base / f"v{self.count}"
        directory.mkdir(parents=True)
        return directory

    def fingerprint(
        self,
        files: Files,
        stage: str = "pipeline:stage",
        *,
        extra: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Fingerprint:
        """Write `files`, import them, fingerprint `stage` ("module:function")."""
        directory = self.new_directory()
        write_files(directory, files)
        return self.fingerprint_in(directory, stage, extra=extra, **options)

    def fingerprint_in(
        self,
        directory: Path,
        stage: str = "pipeline:stage",
        *,
        extra: Mapping[str, str] | None = None,
        **options: Any,
    ) -> Fingerprint:
        """Import the project in `directory` afresh and fingerprint `stage` ("module:function")."""
        with imported_from(directory):
            func = resolve(stage)
            objects = {name: resolve(spec) for name, spec in (extra or {}).items()}
            options.setdefault("root", directory)
            return fingerprint_stage(func, stage_name=stage, extra=objects, **options)

    edit = staticmethod(edit)
    write = staticmethod(write_files)
    changed = staticmethod(changed)

    def changes(
        self, before: Files, after: Files, stage: str = "pipeline:stage", **options: Any
    ) -> set[str]:
        """The entries that differ between the fingerprints of two versions of a project."""
        return changed(
            self.fingerprint(before, stage, **options), self.fingerprint(after, stage, **options)
        )


@pytest.fixture
def projects(tmp_path: Path) -> Projects:
    return Projects(tmp_path / "projects")


class DictCache:
    """A ManifestCache in memory that counts what it is asked: `puts` of manifests (one per
    stage walked), `fact_puts` of source files' facts."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.gets = 0
        self.puts = 0
        self.fact_puts = 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return self.data.get(key)

    def put(self, key: str, value: bytes) -> None:
        if key.startswith("facts/"):
            self.fact_puts += 1
        elif key.startswith("fingerprint/"):
            self.puts += 1
        self.data[key] = value


def settled() -> SourceStats:
    """Stats of a run whose code was loaded well after the files were written."""
    return SourceStats(loaded_ns=time.time_ns() + 60 * 10**9)


def rewrite(directory: Path, relative: str, old: str, new: str) -> None:
    """Edit a file in place, with a later mtime (as an editor would)."""
    path = directory / relative
    before = path.stat().st_mtime_ns
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture
def no_bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are rewritten in place within a second: never let Python reuse a stale .pyc."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
