"""`pivot.fingerprint.get_stage_fingerprint(func)` is exactly the `code` manifest a lock file
records for that function run as a stage: the same entries, keyed the same way, whatever the
registration's params and path overrides."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from pivot import api
from pivot.fingerprint import fingerprint_stage, get_stage_fingerprint
from pivot.spec import extract_spec
from tests.fixtures import seed_000_test_stages, seed_001_overrides, seed_001_placeholder
from tests.fixtures.engine_project import make_project

CHAIN = ("prepare", "train", "report", "side", "split_parts", "accumulate")


def _locks(root: Path) -> dict[str, dict[str, str]]:
    found = {}
    for path in (root / ".pivot" / "stages").glob("*.lock"):
        document = json.loads(path.read_text())
        found[document["stage"]] = document["code"]
    return found


def test_each_lock_manifest_equals_get_stage_fingerprint_of_its_function(tmp_path: Path) -> None:
    root = make_project(tmp_path, *CHAIN)
    _, report = api.repro(start=root, jobs=1)
    assert report.ok, report

    with api.open_context(root) as ctx:
        functions = {name: spec.func for name, spec in ctx.graph.stages.items()}
        locks = _locks(root)
        assert set(locks) == set(CHAIN)
        for name, code in locks.items():
            assert get_stage_fingerprint(functions[name]) == code, name
            assert any(entry.startswith("loader:") for entry in code), name


@pytest.mark.parametrize("module", [seed_001_overrides, seed_001_placeholder, seed_000_test_stages])
def test_overrides_and_placeholders_keep_the_manifests_equal(module: ModuleType) -> None:
    """Path overrides (and PlaceholderDep paths, given only at registration) change a stage's
    deps and outs, never its code manifest: what the plan records is what the function gives."""
    pipeline = getattr(module, "pipeline", None)
    specs = (
        pipeline.stages.values()
        if pipeline is not None
        else [extract_spec(module._test_stage, name="test_stage")]
    )
    for spec in specs:
        recorded = fingerprint_stage(spec.func, stage_name=spec.name, extra=spec.code_objects)
        assert dict(recorded.manifest) == get_stage_fingerprint(spec.func), spec.name
