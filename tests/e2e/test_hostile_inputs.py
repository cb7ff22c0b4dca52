"""End to end: lock files, manifests and a workspace edited the way an attacker (or an accident)
would: paths leaving the project, symlinked output directories, corrupt cache blobs.

Nothing outside the project, in `.pivot/`, or belonging to another stage may be touched; every
byte restored must match its hash; a bad blob is reported, moved aside and its stage re-run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pivot.store import hashing

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def make_table(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[dict, Out("out/table.json", loaders.JSON())]:
    _ran("make_table")
    return {"raw": raw}


def make_parts(table: Annotated[dict, Dep("out/table.json", loaders.JSON())]) -> Annotated[dict[str, str], DirectoryOut("parts/", loaders.Text())]:
    _ran("make_parts")
    return {f"{i}.txt": char * 3 for i, char in enumerate(table["raw"])}


def count(
    seen: Annotated[dict, IncrementalOut("count.json", loaders.JSON())],
    table: Annotated[dict, Dep("out/table.json", loaders.JSON())],
) -> Annotated[dict, IncrementalOut("count.json", loaders.JSON())]:
    _ran("count")
    return {"runs": seen.get("runs", 0) + 1}


pipeline = Pipeline("hostile")
pipeline.register(make_table)
pipeline.register(make_parts)
pipeline.register(count)
"""

ALL_SKIPPED = dict.fromkeys(("make_table", "make_parts", "count"), "skipped")


@pytest.fixture
def built(project: E2EProject) -> E2EProject:
    project.gen({"raw.txt": "abc"})
    project.pipeline(PIPELINE)
    project.repro_json()
    assert sorted(project.runs()) == ["count", "make_parts", "make_table"]
    return project


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A directory outside the project holding files that must survive."""
    directory = tmp_path / "victim"
    directory.mkdir()
    (directory / "precious.txt").write_text("keep me")
    return directory


def _edit_lock(project: E2EProject, stage: str, **changes: Any) -> None:
    """Rewrite the first output entry of `stage`'s lock with `changes`."""
    document = project.lock(stage)
    document["outs"][0].update(changes)
    project.lock_path(stage).write_text(json.dumps(document, indent=2, sort_keys=True))


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _corrupt(blob: Path) -> None:
    """Flip one byte of a cache blob (cache files are read-only: make it writable first)."""
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[0] ^= 0x01
    blob.write_bytes(bytes(data))


# --- item 1: paths read from a lock file ---------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    ["../victim/", "/absolute/victim/", ".pivot/", "raw.txt", "out/table.json", "parts/../../x/"],
)
def test_checkout_refuses_a_lock_output_path_the_stage_does_not_declare(
    built: E2EProject, victim: Path, hostile: str
) -> None:
    parts_hash = built.out_hash("make_parts", "parts/")
    _edit_lock(built, "make_parts", path=hostile)
    before_victim, before_pivot = _tree(victim), _tree(built.root / ".pivot")
    before_raw, before_table = built.read("raw.txt"), built.read("out/table.json")

    result = built.pivot("checkout", "make_parts", expect=2)

    assert "make_parts" in result.stderr or "lock file" in result.stderr
    assert hostile.rstrip("/").split("/")[-1] in result.stderr or hostile in result.stderr
    assert _tree(victim) == before_victim
    assert _tree(built.root / ".pivot") == before_pivot
    assert built.read("raw.txt") == before_raw
    assert built.read("out/table.json") == before_table
    assert built.blob(parts_hash).is_file()


def test_repro_with_a_hostile_lock_path_reruns_the_stage_and_touches_nothing_outside(
    built: E2EProject, victim: Path
) -> None:
    _edit_lock(built, "make_parts", path="../victim/")
    before = _tree(victim)

    result = built.pivot("repro", "--json", "-j", "1")

    # treated as never run: run again, or restored from the run cache (same code and inputs)
    assert result.json["stages"]["make_parts"]["status"] in ("ran", "restored")
    assert "../victim/" in result.stderr + json.dumps(result.json)
    assert _tree(victim) == before
    assert [out["path"] for out in built.lock("make_parts")["outs"]] == ["parts/"]
    assert built.repro_json() == ALL_SKIPPED


def test_checkout_refuses_a_manifest_listing_paths_outside_its_directory(
    built: E2EProject, victim: Path
) -> None:
    content = built.blob(built.out_hash("make_table", "out/table.json"))
    digest = hashing.hash_file(content)
    for escape in ({"../../victim/precious.txt": digest}, {"/etc/evil": digest}):
        data = json.dumps({"files": escape, "manifest_version": 1}, sort_keys=True).encode()
        manifest_hash = hashing.hash_bytes(data)
        built.blob(manifest_hash).parent.mkdir(parents=True, exist_ok=True)
        built.blob(manifest_hash).write_bytes(data)
        _edit_lock(built, "make_parts", hash=manifest_hash)
        (built.root / "parts" / "0.txt").unlink(missing_ok=True)

        result = built.pivot("checkout", "make_parts", expect=2)

        assert "manifest" in result.stderr
        assert _tree(victim) == {"precious.txt": b"keep me"}


# --- item 1: symlinked output directories --------------------------------------------------------


def test_repro_refuses_to_write_through_a_symlinked_output_directory(
    built: E2EProject, victim: Path
) -> None:
    os.rename(built.root / "out", built.root / "out.real")
    os.symlink(victim, built.root / "out")
    built.gen({"raw.txt": "changed"})

    result = built.pivot("repro", "-j", "1", expect=1)

    assert "symlink" in result.output and "out/table.json" in result.output
    assert _tree(victim) == {"precious.txt": b"keep me"}


def test_checkout_refuses_a_symlinked_output_directory(built: E2EProject, victim: Path) -> None:
    for path in (built.root / "parts").iterdir():
        path.unlink()
    (built.root / "parts").rmdir()
    os.symlink(victim, built.root / "parts")

    result = built.pivot("checkout", expect=2)

    assert "symlink" in result.stderr and "parts/" in result.stderr
    assert _tree(victim) == {"precious.txt": b"keep me"}


# --- item 2: corrupt blobs in every restore path -------------------------------------------------


def test_checkout_never_places_a_corrupt_blob_and_sets_it_aside(built: E2EProject) -> None:
    digest = built.out_hash("make_table", "out/table.json")
    _corrupt(built.blob(digest))
    (built.root / "out" / "table.json").unlink()

    result = built.pivot("checkout", "make_table", expect=2)

    assert "make_table" in result.stderr and "corrupt" in result.stderr
    assert str(built.blob(digest)) in result.stderr
    assert not built.exists("out/table.json")
    assert not built.blob(digest).exists()
    assert list((built.root / ".pivot" / "cache" / "quarantine").iterdir())


def test_repro_reruns_a_stage_whose_blob_is_corrupt_and_heals_the_cache(built: E2EProject) -> None:
    digest = built.out_hash("make_table", "out/table.json")
    good = built.read("out/table.json")
    _corrupt(built.blob(digest))
    (built.root / "out" / "table.json").unlink()

    result = built.pivot("repro", "--json", "-j", "1")

    assert result.json["stages"]["make_table"]["status"] == "ran"
    assert built.runs() == ["make_table"]
    assert built.read("out/table.json") == good
    assert hashing.hash_file(built.blob(digest)) == digest
    assert built.repro_json() == ALL_SKIPPED


def test_repro_reruns_a_directory_output_whose_file_blob_is_corrupt(built: E2EProject) -> None:
    digest = hashing.hash_file(built.root / "parts" / "1.txt")
    _corrupt(built.blob(digest))
    (built.root / "parts" / "1.txt").unlink()

    built.repro_json()

    assert built.runs() == ["make_parts"]
    assert built.read("parts/1.txt") == "bbb"
    assert hashing.hash_file(built.blob(digest)) == digest


def test_corrupt_directory_manifest_is_set_aside_and_the_stage_rerun(built: E2EProject) -> None:
    digest = built.out_hash("make_parts", "parts/")
    _corrupt(built.blob(digest))
    (built.root / "parts" / "0.txt").unlink()

    built.repro_json()

    assert built.runs() == ["make_parts"]
    assert sorted(os.listdir(built.root / "parts")) == ["0.txt", "1.txt", "2.txt"]
    assert hashing.hash_file(built.blob(digest)) == digest


def test_forced_rerun_replaces_a_blob_that_does_not_match_its_name(built: E2EProject) -> None:
    digest = built.out_hash("make_table", "out/table.json")
    _corrupt(built.blob(digest))

    built.repro_json("--force", "make_table")

    assert hashing.hash_file(built.blob(digest)) == digest
    (built.root / "out" / "table.json").unlink()
    built.pivot("checkout", "make_table")
    assert hashing.hash_file(built.root / "out" / "table.json") == digest


def test_incremental_output_restore_from_a_corrupt_blob_fails_the_stage_clearly(
    built: E2EProject,
) -> None:
    digest = built.out_hash("count", "count.json")
    _corrupt(built.blob(digest))
    built.gen({"raw.txt": "abcd"})

    result = built.pivot("repro", "-j", "1", expect=1)

    assert "count" in result.output and "corrupt" in result.output
    assert not built.blob(digest).exists()


@pytest.mark.parametrize("link", ["hardlink", "symlink"])
def test_linked_restore_checks_the_blob_first(built: E2EProject, link: str) -> None:
    config = built.root / ".pivot" / "config.yaml"
    config.write_text(f"cache:\n  link: [{link}, copy]\n")
    digest = built.out_hash("make_table", "out/table.json")
    _corrupt(built.blob(digest))
    (built.root / "out" / "table.json").unlink()

    result = built.pivot("checkout", "make_table", expect=2)

    assert "corrupt" in result.stderr
    assert not (built.root / "out" / "table.json").exists()

    built.repro_json()
    assert built.runs() == ["make_table"]
    assert hashing.hash_file(built.blob(digest)) == digest
