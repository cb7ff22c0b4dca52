"""End to end: the no-op snapshot (`.pivot/noop-repro`, `.pivot/noop-status`).

A plain `pivot repro` / `pivot status` that decides nothing is to do records what the decision
depended on; the next one answers from it without importing `pipeline.py`. These tests prove
the fast path fires (the user's modules are not imported: `python -X importtime` lists every
module a process imports), that it prints, exits and records exactly what the usual path does,
and that every kind of change is seen: each change below is made once a fast no-op has just
answered, and the next commands must see the stage as stale and re-run it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pivot import noop
from tests.e2e.conftest import Cli, cli_env

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.e2e.conftest import E2EProject

PIPELINE = """
import glob
import json

import noop_helpers

SETTINGS = json.loads(pathlib.Path("settings.json").read_text())
INPUTS = sorted(glob.glob("inputs/*.txt"))


class CountParams(StageParams):
    scale: int = 1
    inputs: int = 0
    mode: str = "plain"
    factor: int = 0


def prepare(raw: Annotated[str, Dep("data/raw.txt", loaders.Text())]) -> Annotated[str, Out("data/clean.txt", loaders.Text())]:
    _ran("prepare")
    return noop_helpers.clean(raw)


def count(params: CountParams, clean: Annotated[str, Dep("data/clean.txt", loaders.Text())]) -> Annotated[dict, Metric("metrics.json")]:
    _ran("count")
    return {"words": len(clean.split()) * params.scale}


pipeline = Pipeline("noop")
pipeline.register(prepare)
pipeline.register(
    count,
    params=CountParams(
        inputs=len(INPUTS), mode=os.environ.get("NOOP_MODE", "plain"), factor=SETTINGS["factor"]
    ),
)
"""

FILES = {
    "noop_helpers.py": "def clean(text: str) -> str:\n    return text.strip().lower()\n",
    "settings.json": '{"factor": 1}\n',
    "inputs/a.txt": "a\n",
    "data/raw.txt": "Hello World\n",
}

USER_MODULE = "noop_helpers"  # imported only when pipeline.py is


SETTLE_S = noop.RACY_NS / 1e9 + 0.05
"""How long a command here waits first, so that what the test or the last command wrote is
older than the racy window when it starts, as when a user types the next command: a path
changed within `noop.RACY_NS` of being read is not trusted by a snapshot, and a quick machine
starts the next process within that window."""


def pivot_cli(project: E2EProject, *args: str, env: dict[str, str] | None = None) -> Cli:
    """`python -X importtime -m pivot *args`, once what was written has settled: stderr lists
    the modules the process imported."""
    time.sleep(SETTLE_S)
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pivot", *args],
        cwd=project.root,
        env={**cli_env(), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return Cli(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def imported_pipeline(result: Cli) -> bool:
    return any(line.endswith(f"| {USER_MODULE}") for line in result.stderr.splitlines())


def stderr(result: Cli) -> str:
    """stderr without the import-time lines."""
    return "\n".join(line for line in result.stderr.splitlines() if "import time:" not in line)


def stale(result: Cli) -> set[str]:
    return {
        name
        for name, step in json.loads(result.stdout)["stages"].items()
        if step["action"] != "skip"
    }


def acted(result: Cli) -> set[str]:
    """The stages a `repro --json` ran or restored."""
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {name for name, stage in events[-1]["stages"].items() if stage["status"] != "skipped"}


def acted_in_usual_repro(project: E2EProject) -> set[str]:
    """The stages a `repro --json` that must take the usual path (import `pipeline.py`) acted on."""
    result = pivot_cli(project, "repro", "--json")
    assert result.code == 0, result.describe()
    assert imported_pipeline(result)
    return acted(result)


@pytest.fixture
def built(project: E2EProject) -> E2EProject:
    """The project run once, then a usual no-op of each command (they write the snapshots)."""
    project.gen(FILES)
    project.pipeline(PIPELINE)
    project.pivot("repro")
    project.runs()
    for command in ("repro", "status"):
        first = pivot_cli(project, command)
        assert first.code == 0, first.describe()
        assert imported_pipeline(first)
        assert (project.root / ".pivot" / f"noop-{command}").is_file()
    return project


def fast(project: E2EProject, *args: str, env: dict[str, str] | None = None) -> Cli:
    """Run a command that must be answered by the snapshot."""
    result = pivot_cli(project, *args, env=env)
    assert result.code == 0, result.describe()
    assert not imported_pipeline(result), result.describe()
    return result


def test_the_fast_path_says_and_records_what_the_usual_path_does(built: E2EProject) -> None:
    runs = built.root / ".pivot" / "runs"
    variants = [("repro",), ("repro", "-q"), ("repro", "--json"), ("repro", "--explain")]
    variants += [("status",), ("status", "--json"), ("status", "--explain")]
    for args in variants:
        before = len(list(runs.iterdir()))
        quick = fast(built, *args)
        written = len(list(runs.iterdir())) - before
        os.unlink(built.root / ".pivot" / f"noop-{args[0]}")
        slow = pivot_cli(built, *args)
        assert imported_pipeline(slow)
        assert (slow.code, stderr(slow)) == (quick.code, stderr(quick))
        if "--json" in args and args[0] == "repro":  # run ids and durations differ
            assert [_shape(e) for e in slow.events] == [_shape(e) for e in quick.events]
        else:
            assert slow.stdout == quick.stdout
        assert written == (1 if args[0] == "repro" else 0)
    assert "Everything is up to date (2 stages)." in quick.stdout  # the last: status --explain
    records = sorted(runs.iterdir())[-2:]  # the last fast repro's record and the slow one's
    shapes = [_record_shape(json.loads(path.read_text())) for path in records]
    assert shapes[0] == shapes[1]
    assert built.runs() == []


def _shape(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("run_id", "duration", "time")}


def _record_shape(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("id", "started", "duration", "command")}


def _edit(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


CHANGES: dict[str, tuple[Callable[[Path], None], set[str], dict[str, str]]] = {
    "dependency edited": (
        lambda r: _edit(r / "data/raw.txt", "Bye Now\n"),
        {"prepare", "count"},
        {},
    ),
    "output deleted": (lambda r: (r / "data/clean.txt").unlink(), {"prepare"}, {}),
    "output edited": (lambda r: _edit(r / "metrics.json", "{}\n"), {"count"}, {}),
    "lock deleted": (lambda r: (r / ".pivot/stages/count.lock").unlink(), {"count"}, {}),
    "lock edited": (
        lambda r: _edit(
            r / ".pivot/stages/count.lock",
            (r / ".pivot/stages/count.lock").read_text().replace('"scale": 1', '"scale": 7'),
        ),
        {"count"},
        {},
    ),
    "helper body edited": (
        lambda r: _edit(
            r / "noop_helpers.py", "def clean(text: str) -> str:\n    return text.strip().upper()\n"
        ),
        {"prepare", "count"},
        {},
    ),
    "pipeline.py edited": (
        lambda r: _edit(
            r / "pipeline.py",
            (r / "pipeline.py").read_text().replace("* params.scale", "* params.scale * 2"),
        ),
        {"count"},
        {},
    ),
    "params.yaml written": (
        lambda r: _edit(r / "params.yaml", "count:\n  scale: 3\n"),
        {"count"},
        {},
    ),
    "env var read at import": (lambda r: None, {"count"}, {"NOOP_MODE": "fancy"}),
    "file added to a globbed directory": (
        lambda r: _edit(r / "inputs/b.txt", "b\n"),
        {"count"},
        {},
    ),
    "data file read at import": (
        lambda r: _edit(r / "settings.json", '{"factor": 2}\n'),
        {"count"},
        {},
    ),
}


def test_a_usual_no_op_loads_no_worker_machinery(built: E2EProject) -> None:
    """A no-op that takes the usual path (its snapshot gone) plans and ends: it imports no
    process pool (loky), whose import alone costs 20-30 ms."""
    os.unlink(built.root / ".pivot" / "noop-repro")
    result = pivot_cli(built, "repro")
    assert result.code == 0, result.describe()
    assert imported_pipeline(result)
    assert not any(line.endswith("| loky") for line in result.stderr.splitlines())


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_is_seen(built: E2EProject, change: str) -> None:
    apply, expected, env = CHANGES[change]
    fast(built, "status")
    fast(built, "repro")
    apply(built.root)
    status = pivot_cli(built, "status", "--json", env=env)
    assert status.code == 0, status.describe()
    assert imported_pipeline(status)
    assert expected <= stale(status), status.describe()  # (a data file read at import counts
    repro = pivot_cli(built, "repro", "--json", "-j", "1", env=env)  # for all its module's stages)
    assert repro.code == 0, repro.describe()
    assert acted(repro) == stale(status), repro.describe()


def test_a_helper_edited_while_a_run_goes_is_seen(project: E2EProject) -> None:
    project.gen(FILES)
    project.pipeline(
        PIPELINE.replace(
            '    _ran("prepare")\n',
            '    _ran("prepare")\n'
            "    while not pathlib.Path('go').exists():\n"
            "        time.sleep(0.02)\n",
        )
    )
    running = project.start("repro", "-j", "1")
    deadline = time.monotonic() + 60
    while not project.exists("runs.log") and time.monotonic() < deadline:
        time.sleep(0.02)
    _edit(project.root / "noop_helpers.py", "def clean(text: str) -> str:\n    return text[:3]\n")
    project.gen({"go": ""})
    out, err = running.communicate(timeout=120)
    assert running.returncode == 0, out + err
    project.runs()
    status = pivot_cli(project, "status", "--json")
    assert stale(status) == {"prepare", "count"}, status.describe()
    assert pivot_cli(project, "status", "--json").stdout == status.stdout


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage", "empty"])
def test_a_damaged_snapshot_is_ignored_and_replaced(built: E2EProject, damage: str) -> None:
    for command in ("repro", "status"):
        path = built.root / ".pivot" / f"noop-{command}"
        blob = path.read_bytes()
        damaged = {
            "truncated": blob[: len(blob) // 2],
            "flipped": blob[:-10] + bytes([blob[-10] ^ 0x01]) + blob[-9:],
            "garbage": os.urandom(len(blob)),
            "empty": b"",
        }[damage]
        path.write_bytes(damaged)
        slow = pivot_cli(built, command)
        assert slow.code == 0, slow.describe()
        assert imported_pipeline(slow)
        assert "Everything is up to date (2 stages)" in slow.stdout
        fast(built, command)


def _hold_lock(root: Path, record: bool) -> int:
    fd = os.open(root / ".pivot" / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if record:
        holder = {
            "pid": os.getpid(),
            "command": "pivot repro",
            "started": "2026-01-01 00:00:00 UTC",
        }
        os.write(fd, json.dumps(holder).encode())
    return fd


@pytest.mark.parametrize("record", [True, False])
def test_a_held_project_lock_is_respected(built: E2EProject, record: bool) -> None:
    fd = _hold_lock(built.root, record)
    try:
        refused = pivot_cli(built, "repro", "--no-wait")
        assert refused.code == 2, refused.describe()
        assert "the project is locked" in refused.stderr
        fast(built, "status")  # read-only: answered meanwhile
    finally:
        os.ftruncate(fd, 0)  # as a holder that ends cleanly leaves it
        os.close(fd)
    fast(built, "repro")


def test_after_a_killed_holder_the_usual_path_cleans_up(built: E2EProject) -> None:
    holder = {"pid": 999999, "command": "pivot repro", "started": "2026-01-01 00:00:00 UTC"}
    (built.root / ".pivot" / "lock").write_text(json.dumps(holder))
    litter = built.root / "data" / ".clean.txt.0123456789abcdef.tmp"
    litter.write_text("half written")
    result = pivot_cli(built, "repro")
    assert result.code == 0, result.describe()
    assert imported_pipeline(result)
    assert not litter.exists()
    assert (built.root / ".pivot" / "lock").read_text() == ""


def test_commands_that_change_the_workspace_drop_the_snapshot(built: E2EProject) -> None:
    built.pivot("commit")
    assert not (built.root / ".pivot" / "noop-repro").exists()
    assert not (built.root / ".pivot" / "noop-status").exists()


@pytest.mark.parametrize(
    "code",
    [
        "import subprocess\nsubprocess.run(['true'], check=True)\n",
        "pathlib.Path('made-at-import.txt').write_text('x')\n",
        "import threading\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n",
        "print('loading the pipeline')\n",
        "import ctypes\nctypes.CDLL(None).getpid()\n",
    ],
    ids=["subprocess", "write", "thread", "print", "ctypes-call"],
)
def test_an_import_that_does_what_cannot_be_recorded_leaves_no_snapshot(
    project: E2EProject, code: str
) -> None:
    project.gen(FILES)
    project.pipeline(code + PIPELINE)
    project.pivot("repro")
    for command in ("repro", "status", "repro"):
        result = pivot_cli(project, command)
        assert result.code == 0, result.describe()
        assert imported_pipeline(result)
    assert not (project.root / ".pivot" / "noop-repro").exists()


def test_code_that_reads_the_whole_environment_sees_any_change(project: E2EProject) -> None:
    project.gen(FILES)
    project.pipeline("SEEN = sorted(os.environ)\n" + PIPELINE)
    project.pivot("repro")
    pivot_cli(project, "status")
    fast(project, "status")
    changed = pivot_cli(project, "status", env={"NOOP_UNRELATED": "1"})
    assert imported_pipeline(changed)


@pytest.mark.parametrize("command", ["repro", "status"])
def test_files_the_usual_path_keeps_are_kept(built: E2EProject, command: str) -> None:
    kept = [built.root / ".pivot" / "state.db", built.root / ".pivot" / "tmp" / "stage-names"]
    if command == "repro":
        kept.append(built.root / ".gitignore")
    for path in kept:
        path.unlink()
        result = pivot_cli(built, command)
        assert result.code == 0, result.describe()
        assert imported_pipeline(result), path
        assert path.exists()
        pivot_cli(built, command)  # (a file made just now is too recent for a snapshot)
        fast(built, command)


def test_importing_numpy_leaves_a_snapshot(project: E2EProject) -> None:
    """numpy's import loads ctypes, which opens the process itself: nothing to refuse."""
    project.gen(FILES)
    project.pipeline("import numpy\n" + PIPELINE)
    project.pivot("repro")
    assert imported_pipeline(pivot_cli(project, "status"))
    fast(project, "status")


def test_library_calls_write_no_snapshot_unless_asked(project: E2EProject) -> None:
    """A long-lived process (a notebook, watch mode) may hold modules older than their files."""
    from pivot import api

    project.gen(FILES)
    project.pipeline(PIPELINE)
    project.pivot("repro")
    snapshots = [project.root / ".pivot" / f"noop-{command}" for command in ("repro", "status")]
    assert api.status(start=project.root).nothing_to_do
    assert api.repro(start=project.root)[0].nothing_to_do
    assert not any(path.exists() for path in snapshots)
    assert imported_pipeline(pivot_cli(project, "status"))  # the command line writes it
    assert snapshots[1].exists()


# --- the snapshot a run leaves ----------------------------------------------------------------

WAITING = PIPELINE.replace(
    '    _ran("prepare")\n',
    "    while not pathlib.Path('wait/go').exists():\n        time.sleep(0.02)\n",
).replace('    _ran("count")\n', "")
"""Stages that write nothing but their outputs (no runs.log in the project's root, where
imports search: the run may add only its outputs there), the first waiting for `wait/go`."""
LONG_RUN_S = 5.5  # waiting for the run's writes to settle (0.1 s) costs at most 2% of the run


def long_run(project: E2EProject, pipeline: str, during: Callable[[Path], None]) -> None:
    """A first `pivot repro` long enough to leave a no-op snapshot; `during` acts meanwhile."""
    project.gen({**FILES, "wait/.keep": ""})
    project.pipeline(pipeline)
    assert "Ran 2," in _waiting_run(project, during)


def _waiting_run(project: E2EProject, during: Callable[[Path], None]) -> str:
    """A `pivot repro` whose waiting stage goes on once `during` acted, a while after the
    start; its output."""
    time.sleep(SETTLE_S)  # (the pipeline and files the test just wrote, as for `pivot_cli`)
    running = project.start("repro", "-j", "1")
    time.sleep(LONG_RUN_S)
    during(project.root)
    project.gen({"wait/go": ""})
    out, err = running.communicate(timeout=120)
    assert running.returncode == 0, out + err
    return out


def test_a_long_run_leaves_a_snapshot_for_the_first_no_op(project: E2EProject) -> None:
    long_run(project, WAITING, lambda root: None)
    for args in [("status", "--explain"), ("repro",)]:
        assert (project.root / ".pivot" / f"noop-{args[0]}").is_file()
        quick = fast(project, *args)
        assert "Everything is up to date (2 stages)" in quick.stdout
        os.unlink(project.root / ".pivot" / f"noop-{args[0]}")
        slow = pivot_cli(project, *args)
        assert imported_pipeline(slow)
        assert (slow.code, slow.stdout, stderr(slow)) == (quick.code, quick.stdout, stderr(quick))
    _edit(project.root / "noop_helpers.py", "def clean(text: str) -> str:\n    return text[:2]\n")
    assert acted(pivot_cli(project, "repro", "--json")) == {"prepare", "count"}
    assert (project.root / "data/clean.txt").read_text() == "He"


DURING_A_RUN: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    name: CHANGES[name][:2]
    for name in (
        "helper body edited",
        "file added to a globbed directory",
        "data file read at import",
    )
}
DURING_A_RUN["file added where imports search"] = (lambda r: _edit(r / "notes.txt", "x\n"), set())


@pytest.mark.parametrize("change", list(DURING_A_RUN))
def test_a_change_during_a_long_run_is_seen_after_it(project: E2EProject, change: str) -> None:
    during, expected = DURING_A_RUN[change]
    long_run(project, WAITING, during)
    assert expected <= acted_in_usual_repro(
        project
    )  # (a data file read at import counts for all its stages)


def test_a_run_that_writes_a_module_an_import_missed_leaves_no_snapshot(
    project: E2EProject,
) -> None:
    """pipeline.py imports `generated` if it exists and a stage writes `generated.py` in the
    project's root: the pipeline the next command imports is not the one the run planned."""
    pipeline = (
        WAITING.replace(
            "import noop_helpers\n",
            "import noop_helpers\n\ntry:\n    import generated\nexcept ImportError:\n"
            "    generated = None\n",
        )
        .replace('Metric("metrics.json")', 'Out("generated.py", loaders.Text())')
        .replace("-> Annotated[dict, Out(", "-> Annotated[str, Out(")
        .replace(
            'return {"words": len(clean.split()) * params.scale}',
            'return f"WORDS = {len(clean.split()) * params.scale}\\n"',
        )
    )
    long_run(project, pipeline, lambda root: None)
    assert (project.root / "generated.py").read_text() == "WORDS = 2\n"
    result = pivot_cli(project, "repro")
    assert result.code == 0, result.describe()
    assert imported_pipeline(result)


def test_a_run_that_adds_to_a_directory_the_import_lists_leaves_no_snapshot(
    project: E2EProject,
) -> None:
    """The import lists the project's root (where imports search too), and the run writes
    `metrics.json` there: the next import finds one more file."""
    pipeline = WAITING.replace(
        'INPUTS = sorted(glob.glob("inputs/*.txt"))',
        'INPUTS = sorted(glob.glob("inputs/*.txt") + glob.glob("*.json"))',
    )
    long_run(project, pipeline, lambda root: None)
    assert acted_in_usual_repro(project) == {"count"}  # its `inputs` param counts metrics.json now


def second_long_run(
    project: E2EProject,
    pipeline: str,
    before: Callable[[Path], None],
    during: Callable[[Path], None],
) -> str:
    """Run `pipeline` once, then `before` changes something and a second `pivot repro` waits
    long enough to leave a no-op snapshot while `during` acts; its output."""
    project.pipeline(pipeline)
    project.pivot("repro")
    (project.root / "wait/go").unlink()
    before(project.root)
    return _waiting_run(project, during)


BESIDE = (
    WAITING
    + """

def side(text: Annotated[str, Dep("side/in.txt", loaders.Text())]) -> Annotated[str, Out("side/out.txt", loaders.Text())]:
    return text.upper()


pipeline.register(side)
"""
)
"""WAITING with a stage beside the others, which a run of the others leaves alone."""


@pytest.mark.parametrize("edited", [False, True])
def test_a_stage_a_run_left_alone_keeps_what_the_first_plan_saw(
    project: E2EProject, edited: bool
) -> None:
    """After a run of `prepare` and `count` only, `side` keeps its first step in the plan made
    again, and the snapshot keeps what the first plan saw of its files: the next no-op is
    fast, unless one of them changed during the run (its output, edited before the plan made
    again: its dependency is also seen when the graph is built)."""
    project.gen({**FILES, "wait/go": "", "side/in.txt": "side\n"})
    out = second_long_run(
        project,
        BESIDE,
        lambda root: _edit(root / "data/raw.txt", "Bye Now\n"),
        lambda root: _edit(root / "side/out.txt", "edited\n") if edited else None,
    )
    assert "Ran 2," in out
    assert (project.root / ".pivot" / "noop-repro").is_file()
    if not edited:
        assert "Everything is up to date (3 stages)" in fast(project, "repro").stdout
        return
    assert acted_in_usual_repro(project) == {"side"}
    assert (project.root / "side/out.txt").read_text() == "SIDE\n"


@pytest.mark.parametrize("edited", [False, True])
def test_stages_the_early_cut_off_skipped_keep_what_the_first_plan_saw(
    project: E2EProject, edited: bool
) -> None:
    """`clean` is edited without changing what it returns: `prepare` runs and `count` is cut
    off. The plan made again reads only `prepare`'s lock, and keeps what the first plan saw of
    `count`'s files (its lock and output are not looked at again): the next no-op is fast,
    unless one of them changed during the run (`metrics.json`, edited before the plan made
    again: the snapshot holds its signature as the first plan saw it), and the next `repro`
    puts it back."""
    project.gen({**FILES, "wait/go": ""})
    same_output = "def clean(text: str) -> str:\n    return text.lower().strip()\n"
    out = second_long_run(
        project,
        WAITING,
        lambda root: _edit(root / "noop_helpers.py", same_output),
        lambda root: _edit(root / "metrics.json", '{"words": 99}\n') if edited else None,
    )
    assert "Ran 1," in out
    if not edited:
        assert "Everything is up to date (2 stages)" in fast(project, "repro").stdout
        return
    assert acted_in_usual_repro(project) == {"count"}
    assert json.loads((project.root / "metrics.json").read_text()) == {"words": 2}
