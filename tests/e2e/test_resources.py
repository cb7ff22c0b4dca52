"""A stage declaring `resources={"cpus": n}` takes n of the `-j` slots in a local run."""

from __future__ import annotations

import itertools

from tests.e2e.conftest import E2EProject

PIPELINE = """\
class Which(StageParams):
    name: str = ""


def work(params: Which) -> Annotated[str, Out("out/x.txt", loaders.Text())]:
    started = time.time()
    time.sleep(0.6)
    with open("spans.log", "a", encoding="utf-8") as handle:
        handle.write(f"{params.name} {started} {time.time()}\\n")
    return params.name


pipeline = Pipeline("resources")
pipeline.register(work, name="heavy", params=Which(name="heavy"),
                  out_path_overrides={"return": "out/heavy.txt"}, resources={"cpus": 2})
for name in ("a", "b", "c"):
    pipeline.register(work, name=name, params=Which(name=name),
                      out_path_overrides={"return": f"out/{name}.txt"})
"""


def test_a_stage_taking_every_slot_runs_alone(project: E2EProject) -> None:
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "2")
    spans = {}
    for line in project.read("spans.log").splitlines():
        name, start, end = line.split()
        spans[name] = (float(start), float(end))
    assert set(spans) == {"heavy", "a", "b", "c"}
    heavy_start, heavy_end = spans.pop("heavy")
    for name, (start, end) in spans.items():
        assert end <= heavy_start or start >= heavy_end, f"{name} overlapped the 2-cpu stage"
    # The others still ran two at a time: some pair of them overlapped.
    others = sorted(spans.values())
    assert any(b[0] < a[1] for a, b in itertools.pairwise(others)), others
