"""What every remote kind offers (`Remote`), its settings, and `open_remote` to make one.

Imports nothing of Pivot's but `pivot.errors` (obstore only inside `remote.s3`, when used).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from pivot.errors import ConfigError

__all__ = ["S3_SETTINGS", "Remote", "RemoteSettings", "open_remote", "parse_settings"]

S3_SETTINGS = (
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "profile",
    "allow_http",
    "jobs",
)
"""Keys a remote's config may hold besides `url` (`jobs` applies to every kind)."""


class Remote(Protocol):
    """An object store addressed by keys like `files/ab/cdef...` (relative to the remote's root).

    Writes are create-only and atomic: a key, once there, is never replaced, and no reader ever
    sees half an object. Errors are `RemoteError`s that name the remote and the fix.
    """

    url: str
    jobs: int
    """How many transfers to run at once by default."""

    def check(self) -> None:
        """Raise RemoteError (unreachable, bad credentials, no such bucket...) or return."""

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object whose key starts with `prefix` (which ends with '/')."""

    def exists(self, key: str) -> bool: ...

    def upload(self, key: str, source: Path) -> bool:
        """Store file `source` as `key`; False (and nothing written) if `key` already exists."""

    def upload_bytes(self, key: str, data: bytes) -> bool: ...

    def download(self, key: str, dest: Path) -> str:
        """Write object `key` to the new file `dest` and return its BLAKE3 hash.

        Raises FileNotFoundError when the remote has no such key.
        """

    def delete(self, key: str) -> None:
        """Remove `key` (missing is fine)."""


@dataclasses.dataclass(frozen=True)
class RemoteSettings:
    """A named remote from the project config: its URL and the options of its kind."""

    name: str
    url: str
    options: Mapping[str, str | bool | int] = dataclasses.field(default_factory=dict)


def parse_settings(name: str, raw: object, where: str) -> RemoteSettings:
    """Validate one `remotes.<name>` mapping read from `where` (a config file)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("url"), str) or not raw["url"]:
        raise ConfigError(
            f"{where}: remote '{name}' needs a `url` (a directory path, file:///path or "
            f"s3://bucket/prefix). Fix: `pivot remote add {name} URL`."
        )
    unknown = sorted(set(raw) - {"url", *S3_SETTINGS})
    if unknown:
        raise ConfigError(
            f"{where}: remote '{name}' has unknown setting(s) {unknown}; "
            f"known: url, {', '.join(S3_SETTINGS)}"
        )
    options = {key: value for key, value in raw.items() if key != "url"}
    for key, value in options.items():
        if not isinstance(value, str | bool | int):
            raise ConfigError(f"{where}: remote '{name}' setting {key} must be a single value")
    return RemoteSettings(name, str(raw["url"]), options)


def open_remote(settings: RemoteSettings, root: Path) -> Remote:
    """The remote `settings` describe; a relative directory path is relative to `root`."""
    url = settings.url
    if url.startswith("s3://"):
        from pivot.remote import s3  # obstore is imported only when an S3 remote is used

        return s3.S3Remote.from_settings(settings)
    if "://" in url and not url.startswith("file://"):
        raise ConfigError(
            f"remote '{settings.name}' has URL '{url}' of an unknown kind. Fix: use a directory "
            f"path, file:///path or s3://bucket/prefix (`pivot remote modify {settings.name} url "
            "URL`)."
        )
    from pivot.remote import directory

    return directory.DirectoryRemote.from_settings(settings, root)
