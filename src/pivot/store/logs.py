"""Per-stage logs: what each stage printed, per run and for its last run (`.pivot/logs/`).

Layout (run ids come from the run history, `store.runs.new_run_id`):
`logs/runs/<run id>/<stage>.log` is written by the worker while the stage runs (so it can
be followed live); when the stage finishes, `logs/<stage>.log` is made to point at it atomically
(a stage that printed nothing keeps an empty last-run log as it is).
The last `KEEP_RUNS` runs are kept. Imports nothing of Pivot's but `errors`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from pivot import fs
from pivot.errors import NoRecordError

__all__ = [
    "KEEP_RUNS",
    "PROGRESS_SUFFIX",
    "list_runs",
    "progress_path",
    "prune_runs",
    "publish_log",
    "publish_run_log",
    "read_log",
    "remove_progress",
    "run_log_path",
    "run_stages",
]

KEEP_RUNS = 20
LOGS_DIR = "logs"
RUNS_DIR = "runs"
PROGRESS_SUFFIX = ".progress"  # a log's side file of `pivot.progress` reports: see progress_path


def run_log_path(pivot_dir: Path, run_id: str, stage: str) -> Path:
    """Where the worker writes what `stage` prints in run `run_id`."""
    return run_log_dir(pivot_dir, run_id) / log_name(stage)


def run_log_dir(pivot_dir: Path, run_id: str) -> Path:
    """The directory of the logs of run `run_id`."""
    return pivot_dir / LOGS_DIR / RUNS_DIR / run_id


def log_name(stage: str) -> str:
    """The file name of a stage's log (in a run's directory, and the last-run log)."""
    return f"{stage}.log"


def progress_path(log_path: Path | str) -> Path:
    """The side file where a running stage's `pivot.progress` reports how far it is."""
    return Path(f"{log_path}{PROGRESS_SUFFIX}")


def _latest_path(pivot_dir: Path, stage: str) -> Path:
    return pivot_dir / LOGS_DIR / log_name(stage)


def publish_log(
    pivot_dir: Path,
    run_id: str,
    stage: str,
    output: str = "",
    *,
    progressed: bool = True,
    first: bool = False,
) -> None:
    """Make a finished stage's run log its last-run log (`logs/<stage>.log`), atomically: a
    hard link to it, renamed into place (once per stage: plain strings, no stat first).

    A stage run elsewhere (a cluster worker) wrote no log here: its captured `output` is.
    `progressed` False: the run left no progress side file to remove. `first`: the stage
    probably has no last-run log yet, so the link is first tried right at its name (one
    system call instead of a link and a rename; the usual way when the name is taken).
    """
    folder = os.path.join(pivot_dir, LOGS_DIR)
    source = os.path.join(folder, RUNS_DIR, run_id, log_name(stage))
    publish_run_log(source, output, progressed=progressed, first=first)


def publish_run_log(
    source: str,
    output: str = "",
    *,
    progressed: bool = True,
    first: bool = False,
    silent: bool = False,
) -> None:
    """`publish_log` of the run log at `source` (`logs/runs/<run id>/<stage>.log`): what a pool
    worker calls once its stage has ended, sparing the main process (with `progressed` False:
    the runner's live output still reads the progress side file, then removes it). `silent`:
    the stage printed nothing (its run log is empty, or missing), so a last-run log that is an
    empty file is left as it is: it holds what the new one would (a stat instead of a link and
    a rename, for most stages)."""
    run_dir = os.path.dirname(source)
    latest = os.path.join(os.path.dirname(os.path.dirname(run_dir)), os.path.basename(source))
    if progressed:
        remove_progress(source)
    if silent and not first and _empty_file(latest):
        return
    if first:
        try:
            os.link(source, latest)
            return
        except OSError:
            pass  # taken, no run log here, or no links: the usual way below
    temporary = fs.temp_name_for(latest)
    if not _link_or_copy(source, temporary):  # no run log here
        if not output:  # the stage never started (e.g. a missing input): keep the last log
            return
        fs.atomic_write_text(Path(source), output)
        _link_or_copy(source, temporary)
    os.replace(temporary, latest)


def _empty_file(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == 0 and stat.S_ISREG(st.st_mode)


def remove_progress(log_path: str) -> None:
    """Remove the progress side file of the run log at `log_path`, if there is one (once the
    live output has read its last reports)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(log_path + PROGRESS_SUFFIX)


def _link_or_copy(source: str, dest: str) -> bool:
    """Hard-link `source` as `dest` (a copy where links fail); False if there is no source."""
    try:
        os.link(source, dest)
    except FileNotFoundError:
        return False
    except OSError:
        shutil.copyfile(source, dest)
    return True


def list_runs(pivot_dir: Path) -> list[str]:
    """Run ids with kept logs, oldest first."""
    runs = pivot_dir / LOGS_DIR / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(entry.name for entry in runs.iterdir() if entry.is_dir())


def run_stages(pivot_dir: Path, run_id: str) -> tuple[str, ...]:
    """The stages with a log in run `run_id`."""
    folder = pivot_dir / LOGS_DIR / RUNS_DIR / run_id
    return tuple(sorted(p.name[: -len(".log")] for p in folder.glob("*.log")))


def prune_runs(pivot_dir: Path, keep: int = KEEP_RUNS) -> None:
    """Delete the logs of all but the newest `keep` runs (last-run logs stay: they are links)."""
    for run_id in list_runs(pivot_dir)[:-keep] if keep > 0 else list_runs(pivot_dir):
        with contextlib.suppress(OSError):
            shutil.rmtree(pivot_dir / LOGS_DIR / RUNS_DIR / run_id)


def read_log(pivot_dir: Path, stage: str, run_id: str | None = None) -> str:
    """What `stage` printed in its last run, or in run `run_id`."""
    if run_id is None:
        path = _latest_path(pivot_dir, stage)
        if not path.is_file():
            raise NoRecordError(
                f"no log for stage '{stage}': it has not run since logs were kept. "
                f"Run `pivot repro {stage}` (or check the name with `pivot status`)"
            )
        return path.read_text(encoding="utf-8", errors="replace")
    if run_id not in list_runs(pivot_dir):
        kept = ", ".join(list_runs(pivot_dir)[-5:]) or "none"
        raise NoRecordError(
            f"no logs kept for run '{run_id}' (the last {KEEP_RUNS} runs are kept; latest: {kept})"
        )
    path = run_log_path(pivot_dir, run_id, stage)
    if not path.is_file():
        raise NoRecordError(f"stage '{stage}' did not run in run '{run_id}', so it has no log")
    return path.read_text(encoding="utf-8", errors="replace")
