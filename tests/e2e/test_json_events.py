"""The `--json` event stream of `repro` and `run`: its schema (docs/cli.md) is a contract.

One JSON object per line, each with "event" and "schema": 1; run_start, stage_start,
stage_output (with --show-output), stage_end, run_end (which holds the whole report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
import pivot


def shout(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("loud.txt", loaders.Text())]:
    print("shouting", len(raw), "chars")
    for _ in pivot.progress(range(3), desc="letters"):
        pass
    return raw.upper()


def count(text: Annotated[str, Dep("loud.txt", loaders.Text())]) -> Annotated[dict, Metric("count.json")]:
    return {"chars": len(text)}


def broken(text: Annotated[str, Dep("loud.txt", loaders.Text())]) -> Annotated[str, Out("never.txt", loaders.Text())]:
    print("about to fail")
    raise ValueError("bad input")


def after(text: Annotated[str, Dep("never.txt", loaders.Text())]) -> Annotated[str, Out("after.txt", loaders.Text())]:
    return text


pipeline = Pipeline("events")
pipeline.register(shout)
pipeline.register(count)
if os.environ.get("WITH_BROKEN"):
    pipeline.register(broken)
    pipeline.register(after)
"""

COMMON = {"event", "schema"}
FIELDS = {
    "run_start": COMMON | {"run_id", "stages", "warnings"},
    "stage_start": COMMON | {"stage", "index", "total"},
    "stage_output": COMMON | {"stage", "lines"},
    "stage_progress": COMMON | {"stage", "done", "total", "description"},
    "stage_end": COMMON | {"stage", "status", "reasons", "duration", "error", "index", "total"},
    "run_end": COMMON | {"run_id", "ok", "counts", "duration", "stages", "warnings"},
}


def _check_schema(events: list[dict[str, Any]]) -> None:
    for event in events:
        assert event["schema"] == 1, event
        assert set(event) == FIELDS[event["event"]], event


def test_repro_json_streams_events_and_ends_with_the_report(project: E2EProject) -> None:
    project.gen({"raw.txt": "hello\n"})
    project.pipeline(PIPELINE)

    result = project.pivot("repro", "--json", "--show-output", "-j", "1")

    events = result.events
    _check_schema(events)
    kinds = [e["event"] for e in events if e["event"] != "stage_progress"]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    start, end = events[0], events[-1]
    assert start["stages"]["shout"] == {"action": "run", "reasons": ["no previous run"]}
    assert end["run_id"] == start["run_id"]
    by_stage = [
        (e["event"], e.get("stage")) for e in events[1:-1] if e["event"] != "stage_progress"
    ]
    assert by_stage == [
        ("stage_start", "shout"),
        ("stage_output", "shout"),
        ("stage_end", "shout"),
        ("stage_start", "count"),
        ("stage_end", "count"),
    ]
    output = next(e for e in events if e["event"] == "stage_output")
    assert output["lines"] == ["shouting 6 chars"]
    ended = {e["stage"]: e for e in events if e["event"] == "stage_end"}
    assert ended["shout"]["status"] == "ran" and ended["shout"]["reasons"] == ["no previous run"]
    assert ended["shout"]["error"] == "" and ended["shout"]["duration"] >= 0
    assert end["ok"] is True
    assert end["counts"] == {"ran": 2, "skipped": 0, "restored": 0, "failed": 0, "blocked": 0}
    assert end["stages"]["count"]["status"] == "ran"
    assert end["stages"]["shout"]["output"] == "shouting 6 chars\n"
    progress = [e for e in events if e["event"] == "stage_progress"]
    assert progress and progress[-1]["done"] == 3 and progress[-1]["total"] == 3
    assert result.json == end  # a script reading the last line gets the whole report


def test_without_show_output_no_output_events_and_a_noop_run(project: E2EProject) -> None:
    project.gen({"raw.txt": "hello\n"})
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "1")

    events = project.pivot("repro", "--json").events

    _check_schema(events)
    assert [e["event"] for e in events] == ["run_start", "run_end"]
    assert events[-1]["counts"]["skipped"] == 2 and events[-1]["ok"] is True


def test_a_failure_and_what_it_blocks_in_stage_end_and_run_end(project: E2EProject) -> None:
    project.gen({"raw.txt": "hello\n"})
    project.pipeline(PIPELINE.replace('os.environ.get("WITH_BROKEN")', "True"))

    result = project.pivot("repro", "--json", "-j", "1", "-k", expect=1)

    events = result.events
    _check_schema(events)
    ended = {e["stage"]: e for e in events if e["event"] == "stage_end"}
    assert ended["broken"]["status"] == "failed"
    assert "ValueError: bad input" in ended["broken"]["error"]
    assert ended["after"]["status"] == "blocked"
    end = events[-1]
    assert end["ok"] is False
    assert end["counts"]["failed"] == 1 and end["counts"]["blocked"] == 1
    assert end["stages"]["broken"]["output"] == "about to fail\n"


def test_run_json_uses_the_same_stream(project: E2EProject) -> None:
    project.gen({"raw.txt": "hello\n"})
    project.pipeline(PIPELINE)
    project.pivot("repro", "-j", "1")

    events = project.pivot("run", "count", "--force", "--json").events

    _check_schema(events)
    assert list(events[0]["stages"]) == ["count"]
    assert [(e["event"], e.get("stage")) for e in events[1:-1]] == [
        ("stage_start", "count"),
        ("stage_end", "count"),
    ]
    assert events[-1]["stages"]["count"]["status"] == "ran"
