"""A batch shared with a forked copy of the process (`fingerprint_stages(share=True)`) gives
exactly the fingerprints, stored manifests and stored facts the process alone gives; a copy that
fails leaves its stages to the process; `forked` runs, fails and stops copies cleanly."""

from __future__ import annotations

import marshal
import os
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from pivot.fingerprint import Fingerprint, StageRequest, fingerprint_stages, forked
from pivot.fingerprint import stage as stage_module
from pivot.fingerprint.cache import Shelf
from tests.unit.fingerprint.conftest import DictCache, imported_from, resolve, settled

pytestmark = pytest.mark.usefixtures("no_bytecode")


def _module(prefix: str, count: int) -> str:
    defs = [
        f"def {prefix}{i}(x):\n    total = scale(x) + {i}\n    return [total] * LIMIT\n\n"
        for i in range(count)
    ]
    return "from helpers import LIMIT, scale\n\n" + "".join(defs)


PROJECT = {
    "helpers.py": """
        LIMIT = 3


        def scale(x):
            return x * 2
    """,
    "mod_a.py": _module("a", 6),
    "mod_b.py": _module("b", 4),
    "mod_c.py": _module("c", 3),
}
STAGES = [f"mod_a:a{i}" for i in range(6)] + [f"mod_b:b{i}" for i in range(4)]
STAGES += [f"mod_c:c{i}" for i in range(3)]


@pytest.fixture
def project(projects):
    directory = projects.new_directory()
    projects.write(directory, PROJECT)
    return directory


@pytest.fixture
def sharing(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Share any batch of two modules or more (the test runner's own thread does not matter
    to a copy that only computes), and count what this process and the copies assemble."""
    seen: dict[str, Any] = {"assembled": 0, "sent": []}
    monkeypatch.setattr(stage_module, "SHARE_AT_LEAST", 1)
    monkeypatch.setattr(forked, "possible", lambda: True)
    assemble = stage_module._Assembler.assemble

    def counted(self: Any, request: StageRequest) -> Any:
        seen["assembled"] += 1  # in this process only: a copy counts in its own memory
        return assemble(self, request)

    result = forked.Forked.result

    def kept(self: forked.Forked) -> object | None:
        sent = result(self)
        seen["sent"].append(sent)
        return sent

    monkeypatch.setattr(stage_module._Assembler, "assemble", counted)
    monkeypatch.setattr(forked.Forked, "result", kept)
    return seen


def _batch(project: Path, cache: DictCache, *, share: bool) -> dict[str, Fingerprint]:
    with imported_from(project):
        requests = [StageRequest(spec.split(":")[1], resolve(spec)) for spec in STAGES]
        return fingerprint_stages(requests, cache=cache, root=project, stats=settled(), share=share)


def _rows(cache: DictCache) -> dict[str, object]:
    """The cache's rows as values: stored manifests as `Shelf` reads them, facts and verdicts
    decoded (marshal may write equal values as different bytes)."""
    keys = [key for key in cache.data if key.startswith("fingerprint/")]
    rows: dict[str, object] = dict(Shelf(cache).read(keys))
    assert len(rows) == len(keys) == len(STAGES)
    for key, data in cache.data.items():
        if key.startswith("facts/"):
            fields = marshal.loads(zlib.decompress(data))
            rows[key] = tuple(
                {name: marshal.loads(packed) for name, packed in field.items()}
                if isinstance(field, dict) and all(isinstance(v, bytes) for v in field.values())
                else field
                for field in fields
            )
        elif not key.startswith("fingerprint"):
            rows[key] = data
    return rows


def test_a_forked_copy_makes_what_this_process_makes(project, sharing):
    alone, shared = DictCache(), DictCache()
    expected = _batch(project, alone, share=False)
    assert sharing["assembled"] == len(STAGES) and not sharing["sent"]
    sharing["assembled"] = 0

    found = _batch(project, shared, share=True)

    assert found == expected
    assert list(found) == list(expected)
    assert _rows(shared) == _rows(alone)
    (sent,) = sharing["sent"]
    assert sent is not None and len(sent[0]) == 6  # the copy made mod_a's six (about half)
    assert sharing["assembled"] == len(STAGES) - 6


def test_a_copy_that_fails_leaves_its_stages_to_this_process(project, sharing, monkeypatch):
    def broken(*args: object) -> object:
        raise RuntimeError("the copy fails")

    monkeypatch.setattr(stage_module, "_assembled_apart", broken)
    alone, shared = DictCache(), DictCache()
    expected = _batch(project, alone, share=False)
    sharing["assembled"] = 0

    found = _batch(project, shared, share=True)

    assert sharing["sent"] == [None]
    assert sharing["assembled"] == len(STAGES)
    assert found == expected
    assert _rows(shared) == _rows(alone)


def test_a_batch_of_one_module_is_not_shared(projects, sharing):
    directory = projects.new_directory()
    projects.write(directory, {"helpers.py": PROJECT["helpers.py"], "one.py": _module("s", 5)})
    with imported_from(directory):
        requests = [StageRequest(f"s{i}", resolve(f"one:s{i}")) for i in range(5)]
        fingerprint_stages(requests, cache=DictCache(), root=directory, share=True)
    assert not sharing["sent"] and sharing["assembled"] == 5


def test_forked_copy_sends_back_its_result():
    copy = forked.start(lambda: {"pid": os.getpid(), "values": [1, 2, 3]})
    sent = copy.result()
    assert isinstance(sent, dict)
    assert sent["values"] == [1, 2, 3] and sent["pid"] == copy.pid != os.getpid()
    copy.stop()  # already ended: nothing to do


def test_forked_copy_that_raises_gives_none():
    def failing() -> object:
        raise ValueError("no")

    assert forked.start(failing).result() is None


def test_stopping_a_copy_ends_it_at_once():
    copy = forked.start(lambda: time.sleep(60))
    began = time.monotonic()
    copy.stop()
    assert time.monotonic() - began < 10
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(copy.pid, os.WNOHANG)


def test_no_copy_while_another_thread_runs(monkeypatch):
    monkeypatch.setattr(forked, "cpus", lambda: 2)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not forked.possible()
    finally:
        release.set()
        other.join()


def test_when_no_copy_can_be_made_this_process_does_it_all(project, sharing, monkeypatch):
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    expected = _batch(project, DictCache(), share=False)
    sharing["assembled"] = 0
    monkeypatch.setattr(os, "fork", no_fork)

    found = _batch(project, DictCache(), share=True)

    assert found == expected
    assert sharing["assembled"] == len(STAGES) and not sharing["sent"]
