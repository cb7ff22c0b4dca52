"""Pivot's own loaders that run no user code (`Text`, `PathOnly`; `Text` saving a plain `str`)
run outside the observation of a stage's code, at full speed; everything else the stage runs,
user subclasses of those loaders and `str` subclasses included, is still seen. A `Text` output
is cached from the bytes written, not read back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest

from pivot.execute import worker
from pivot.fingerprint import observe
from pivot.loaders import Text
from pivot.outputs import Dep, Out
from pivot.store import cache as cache_module
from pivot.store.cache import Cache
from pivot.store.hashing import hash_bytes
from tests.unit.execute.test_execute_capture import task

MODULE = __name__


def _shout(text: str) -> str:
    return text.upper()


def _decorate(text: str) -> str:
    return f"*{text}*"


def _encoded(text: str) -> bytes:
    return str.encode(text, "utf-8")


class DecoratingText(Text):
    """A user's loader: a subclass of Text whose save calls user code."""

    def save(self, data: str, path: Path) -> None:
        super().save(_decorate(data), path)


class Loud(str):
    """A user's str whose encoding is user code."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _encoded(self)


def plain(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("p.txt", Text())]:
    return _shout(raw)


def decorated(
    raw: Annotated[str, Dep("raw.txt", Text())],
) -> Annotated[str, Out("d.txt", DecoratingText())]:
    return raw


def loud(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("l.txt", Text())]:
    return Loud(raw)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "raw.txt").write_text("ab")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("function", "seen", "content"),
    [
        (plain, "_shout", "AB"),
        (decorated, "_decorate", "*ab*"),
        (loud, "_encoded", "ab"),
    ],
)
def test_the_user_code_a_stage_runs_is_seen_around_pivots_own_loaders(
    root: Path, function: object, seen: str, content: str
) -> None:
    outcome = worker.execute_stage(task(root, function))

    assert outcome.ok, outcome.error
    assert f"code:{MODULE}:{seen}" in outcome.observed
    assert f"code:{MODULE}:{function.__name__}" in outcome.observed  # type: ignore[attr-defined]
    assert next(root.glob("?.txt")).read_text() == content


def test_paused_leaves_its_body_out_of_the_observation_only(tmp_path: Path) -> None:
    with observe.paused():  # no observation running: nothing to pause
        _shout("x")
    with observe.observing(str(tmp_path)) as observed:
        with observe.paused():
            _decorate("x")
        _shout("x")
    assert f"code:{MODULE}:_shout" in observed[0].code
    assert f"code:{MODULE}:_decorate" not in observed[0].code


def surrogate(raw: Annotated[str, Dep("raw.txt", Text())]) -> Annotated[str, Out("s.txt", Text())]:
    return raw + "\udc80"


def test_a_text_output_is_cached_from_the_bytes_written_not_read_back(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_back: list[str] = []
    real = cache_module._read_small
    monkeypatch.setattr(
        cache_module, "_read_small", lambda path: read_back.append(str(path)) or real(path)
    )
    for function in (plain, decorated):
        outcome = worker.execute_stage(task(root, function))
        assert outcome.ok, outcome.error
        (entry,) = outcome.outs
        cache = Cache(root / ".pivot" / "cache")
        assert cache.read_bytes(entry.hash) == (root / entry.path).read_bytes()
        assert hash_bytes((root / entry.path).read_bytes()) == entry.hash
    assert read_back == [str(root / "d.txt")]  # only the user's loader's output is read back


def test_a_text_output_that_cannot_be_encoded_fails_its_stage_as_before(root: Path) -> None:
    outcome = worker.execute_stage(task(root, surrogate))
    assert outcome.kind is worker.OutcomeKind.STAGE_FAILED
    assert "saving output 's.txt' with Text() failed" in outcome.error
    assert "UnicodeEncodeError" in outcome.error
    assert not (root / "s.txt").exists()
