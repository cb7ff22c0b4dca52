"""A remote that is a directory (a local disk or a network mount), laid out like the cache.

Objects are written to a temp name in their final directory and moved into place, so a reader
never sees half a file; an existing key is never replaced. Imports nothing of Pivot's but
`pivot.errors`, `pivot.fs`, `pivot.store` and `pivot.remote.base`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from pivot import fs
from pivot.errors import ConfigError, RemoteError
from pivot.remote.base import RemoteSettings
from pivot.store import hashing

__all__ = ["DirectoryRemote"]

_DEFAULT_JOBS = 8


class DirectoryRemote:
    """Objects are files under `root` at their key."""

    def __init__(self, root: Path, *, jobs: int = _DEFAULT_JOBS, url: str | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        self.url = url or str(self.root)
        self.jobs = jobs

    @classmethod
    def from_settings(cls, settings: RemoteSettings, project_root: Path) -> DirectoryRemote:
        url = settings.url
        path = Path(unquote(urlparse(url).path)) if url.startswith("file://") else Path(url)
        extra = sorted(set(settings.options) - {"jobs"})
        if extra:
            raise ConfigError(
                f"remote '{settings.name}' is a directory; the setting(s) {extra} apply only to "
                f"S3 remotes. Fix: `pivot remote modify {settings.name} KEY --unset`."
            )
        jobs = int(settings.options.get("jobs", _DEFAULT_JOBS))
        return cls(project_root / path.expanduser(), jobs=jobs, url=url)

    def _path(self, key: str) -> Path:
        return self.root / key

    def check(self) -> None:
        if not self.root.is_dir():
            raise RemoteError(
                f"directory remote '{self.url}' does not exist ({self.root}). Fix: create it "
                "(`mkdir -p`), mount it, or correct the URL with `pivot remote modify NAME url URL`."
            )
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise RemoteError(
                f"directory remote '{self.url}' cannot be read (permission denied on {self.root})."
                " Fix: check its permissions."
            )

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self._path(prefix)
        for directory, _subdirs, files in os.walk(base):
            relative = os.path.relpath(directory, self.root).replace(os.sep, "/")
            for name in files:
                if fs.is_temp_name(name):
                    continue
                try:
                    size = os.stat(os.path.join(directory, name)).st_size
                except FileNotFoundError:
                    continue
                yield f"{relative}/{name}", size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def upload(self, key: str, source: Path) -> bool:
        return self._create(key, lambda temp: shutil.copyfile(source, temp))

    def upload_bytes(self, key: str, data: bytes) -> bool:
        return self._create(key, lambda temp: temp.write_bytes(data))

    def _create(self, key: str, write: Callable[[Path], object]) -> bool:
        target = self._path(key)
        if target.is_file():
            return False
        try:
            with fs.atomic_output(target) as temp:
                write(temp)
                fs.make_readonly(temp)
        except PermissionError as error:
            raise RemoteError(
                f"cannot write to directory remote '{self.url}' ({error}). Fix: check the "
                f"permissions of {self.root}."
            ) from None
        except OSError as error:
            raise RemoteError(
                f"cannot write '{key}' to directory remote '{self.url}' ({error}). Fix: check "
                "that it is mounted and has free space."
            ) from None
        return True

    def download(self, key: str, dest: Path) -> str:
        shutil.copyfile(self._path(key), dest)
        return hashing.hash_file(dest)

    def delete(self, key: str) -> None:
        fs.remove_path(self._path(key))
