"""A remote in an S3 bucket (AWS or any S3-compatible server) through obstore.

The only module that imports obstore, and the one boundary where obstore's errors become
`RemoteError`s naming what to fix (`_translated`). Imports nothing of Pivot's but
`pivot.errors`, `pivot.store` and `pivot.remote.base`.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pivot.errors import ConfigError, RemoteError
from pivot.remote.base import RemoteSettings

__all__ = ["S3Remote"]

_DEFAULT_JOBS = 32
_CHUNK = 8 * 1024 * 1024
_CONFIG_KEYS = ("endpoint", "region", "access_key_id", "secret_access_key", "session_token")


def _import_obstore() -> Any:
    try:
        import obstore
    except ImportError:
        raise ConfigError(
            "S3 remotes need obstore, which is not installed. Fix: `pip install 'pivot[s3]'`."
        ) from None
    return obstore


def _truthy(value: object) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def _profile_credentials(profile: str) -> dict[str, str]:
    """Keys and region of an AWS CLI profile (`~/.aws/credentials` and `~/.aws/config`)."""
    found: dict[str, str] = {}
    home = Path.home() / ".aws"
    credentials = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", home / "credentials"))
    config = Path(os.environ.get("AWS_CONFIG_FILE", home / "config"))
    for path, section in (
        (config, f"profile {profile}" if profile != "default" else profile),
        (credentials, profile),
    ):
        parser = configparser.ConfigParser()
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(path)
        if parser.has_section(section):
            for ours, theirs in (
                ("access_key_id", "aws_access_key_id"),
                ("secret_access_key", "aws_secret_access_key"),
                ("session_token", "aws_session_token"),
                ("region", "region"),
            ):
                if parser.has_option(section, theirs):
                    found[ours] = parser.get(section, theirs)
    return found


class S3Remote:
    """Objects under `s3://bucket/prefix/<key>`."""

    def __init__(
        self, url: str, store: Any, *, jobs: int = _DEFAULT_JOBS, endpoint: str | None = None
    ) -> None:
        self.url = url
        self.jobs = jobs
        self._store = store
        self._obstore = _import_obstore()
        self._where = f"'{url}'" + (f" at {endpoint}" if endpoint else "")

    @classmethod
    def from_settings(cls, settings: RemoteSettings) -> S3Remote:
        obstore = _import_obstore()
        from obstore.store import S3Store

        bucket, _, prefix = settings.url[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(f"remote '{settings.name}': '{settings.url}' names no bucket")
        options = dict(settings.options)
        profile = options.get("profile") or os.environ.get("AWS_PROFILE")
        config: dict[str, str] = {}
        if profile and not os.environ.get("AWS_ACCESS_KEY_ID"):
            config.update(_profile_credentials(str(profile)))
        config.update({key: str(options[key]) for key in _CONFIG_KEYS if key in options})
        client: dict[str, Any] = {  # a large object may take minutes; connecting may not
            "connect_timeout": datetime.timedelta(seconds=5),
            "timeout": datetime.timedelta(minutes=30),
        }
        allow_http = options.get("allow_http", os.environ.get("AWS_ALLOW_HTTP"))
        if allow_http is not None:  # given explicitly: obstore's env default no longer applies
            client["allow_http"] = _truthy(allow_http)
        retry = {"max_retries": 3, "retry_timeout": datetime.timedelta(seconds=30)}
        try:
            store = S3Store(
                bucket,
                prefix=prefix.strip("/") or None,
                config=config,  # type: ignore[arg-type]
                client_options=client,  # type: ignore[arg-type]
                retry_config=retry,  # type: ignore[arg-type]
            )
        except obstore.exceptions.BaseError as error:
            raise ConfigError(
                f"remote '{settings.name}' cannot be set up: {_first_line(error)}"
            ) from None
        jobs = int(options.get("jobs", _DEFAULT_JOBS))
        endpoint = config.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL")
        return cls(settings.url, store, jobs=jobs, endpoint=endpoint)

    def check(self) -> None:
        with self._translated(""):
            self._obstore.list_with_delimiter(self._store, prefix="files/")

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        with self._translated(prefix):
            for chunk in self._obstore.list(self._store, prefix=prefix, chunk_size=1000):
                for meta in chunk:
                    yield str(meta["path"]), int(meta["size"])

    def exists(self, key: str) -> bool:
        try:
            with self._translated(key):
                self._obstore.head(self._store, key)
        except FileNotFoundError:
            return False
        return True

    def upload(self, key: str, source: Path) -> bool:
        return self._put(key, Path(source))

    def upload_bytes(self, key: str, data: bytes) -> bool:
        return self._put(key, data)

    def _put(self, key: str, data: Path | bytes) -> bool:
        """Create-only (`If-None-Match: *`): an existing key is never replaced."""
        try:
            with self._translated(key):
                self._obstore.put(self._store, key, data, mode="create", chunk_size=_CHUNK)
        except FileExistsError:
            return False
        return True

    def download(self, key: str, dest: Path) -> str:
        import blake3

        hasher = blake3.blake3()
        with self._translated(key):
            result = self._obstore.get(self._store, key)
            with open(dest, "xb") as handle:
                for chunk in result.stream(min_chunk_size=_CHUNK):
                    view = memoryview(chunk)
                    hasher.update(view)
                    handle.write(view)
        return str(hasher.hexdigest())

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._translated(key):
            self._obstore.delete(self._store, key)

    @contextlib.contextmanager
    def _translated(self, key: str) -> Iterator[None]:
        """obstore's errors -> FileNotFoundError (no such key), FileExistsError (create-only
        write of an existing key) or a one-line RemoteError saying what to fix."""
        errors = self._obstore.exceptions
        try:
            yield
        except errors.AlreadyExistsError:
            raise FileExistsError(key) from None
        except errors.PreconditionError:
            raise FileExistsError(key) from None
        except errors.NotFoundError:
            raise FileNotFoundError(key) from None
        except errors.BaseError as error:
            raise RemoteError(_explain(error, self._where)) from None


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _explain(error: BaseException, where: str) -> str:
    """One line naming what is wrong with the S3 remote and the fix."""
    text = str(error)
    name = type(error).__name__
    if "NoSuchBucket" in text:
        return f"S3 remote {where}: the bucket does not exist. Fix: create it, or correct the URL."
    if any(code in text for code in ("SignatureDoesNotMatch", "InvalidAccessKeyId")) or (
        name == "UnauthenticatedError"
    ):
        return (
            f"S3 remote {where} refused the credentials (wrong access key or secret). Fix: "
            "`pivot remote modify NAME access_key_id ... --local` (and secret_access_key), or set "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE."
        )
    if name == "PermissionDeniedError" or "AccessDenied" in text or "403 Forbidden" in text:
        return (
            f"S3 remote {where}: permission denied. Fix: grant these credentials read/write/list "
            "on the bucket, or use other credentials."
        )
    if "timed out" in text.lower():
        return (
            f"S3 remote {where} did not answer in time ({_first_line(error)}). Fix: check the "
            "server's health and the network, then run the command again (it resumes)."
        )
    if "error sending request" in text or "Connection refused" in text or "dns error" in text:
        return (
            f"cannot reach S3 remote {where}. Fix: check the endpoint (`pivot remote modify NAME "
            "endpoint URL`) and the network; a plain-http server also needs `allow_http true`."
        )
    if "builder error" in text and "http://" in text:
        return (
            f"S3 remote {where} is plain http, which is refused by default. Fix: `pivot remote "
            "modify NAME allow_http true` (or AWS_ALLOW_HTTP=true) for a local server."
        )
    if "credential" in text.lower():
        return (
            f"S3 remote {where}: no usable credentials ({_first_line(error)}). Fix: set "
            "access_key_id/secret_access_key with `pivot remote modify NAME KEY VALUE --local`, "
            "or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE."
        )
    return f"S3 remote {where} failed: {_first_line(error)}"
