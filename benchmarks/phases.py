"""Where one `pivot` command's time goes: the command run in this process, with wall and CPU
timers around its main phases, printed (to stderr) when it exits.

    cd PROJECT && python /path/to/benchmarks/phases.py repro        # any pivot arguments

Each row: when the phase started (seconds since this script started), its name, its wall time,
this process's CPU time meanwhile (a phase that waits, for workers or a forked copy, shows
more wall than CPU) and its minor page faults (after the run's workers are forked, the first
write to each page this process shares with them faults and copies it: about 2 us a page). The last rows give the CPU of the children this process reaped (the
run's worker processes) and the totals. A phase that runs several times has a row each time.

Profilers explain a phase further: py-spy (`py-spy record --nonblocking -f raw`) samples
without slowing the command much; cProfile inflates the many small calls of planning.
"""

from __future__ import annotations

import atexit
import importlib
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

STARTED = time.perf_counter()
CPU_STARTED = time.process_time()

PHASES = (
    # (module, attribute path, name shown)
    ("pivot.discovery", "load_pipeline", "import pipeline.py, register stages"),
    ("pivot.plan", "make_plan", "plan"),
    ("pivot.plan", "fingerprints_of", "  code fingerprints"),
    ("pivot.api", "_forked_executor", "fork the run's workers"),
    ("pivot.execute.runner", "run_plan", "run"),
    ("pivot.execute.recorder", "RunRecorder.record", "run record"),
    ("pivot.api", "_plan_again", "plan again (for the no-op snapshot)"),
    ("pivot.store.state", "StateDB.close", "state db close"),
    ("pivot.noop", "write", "no-op snapshot"),
)

_rows: list[tuple[float, str, float, float, int]] = []


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu, faults = time.perf_counter(), time.process_time(), _faults()
        try:
            return function(*args, **kwargs)
        finally:
            took = (time.perf_counter() - wall, time.process_time() - cpu, _faults() - faults)
            _rows.append((wall - STARTED, name, *took))

    return timed


def install() -> None:
    """Wrap each phase's function where it is defined; callers that imported the function by
    name before this ran would not see the wrapper (Pivot's modules look them up through the
    module at call time)."""
    for module_name, path, name in PHASES:
        owner: Any = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, attribute, _timed(getattr(owner, attribute), name))


def report() -> None:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stdout.flush()  # (the command's own output first)
    out = sys.stderr
    print(f"{'at s':>8}  {'phase':40} {'wall s':>8} {'CPU s':>8} {'faults':>8}", file=out)
    for at, name, wall, cpu, faults in sorted(_rows):
        print(f"{at:8.3f}  {name:40} {wall:8.3f} {cpu:8.3f} {faults:8d}", file=out)
    child_cpu = children.ru_utime + children.ru_stime
    name = "children reaped (workers)"
    print(f"{'':8}  {name:40} {'':8} {child_cpu:8.3f} {children.ru_minflt:8d}", file=out)
    wall, cpu = time.perf_counter() - STARTED, time.process_time() - CPU_STARTED
    print(f"{'':8}  {'total (this process)':40} {wall:8.3f} {cpu:8.3f} {_faults():8d}", file=out)


def main() -> None:
    install()
    atexit.register(report)
    from pivot.cli.main import main as pivot_main

    sys.argv = ["pivot", *sys.argv[1:]]
    pivot_main()


if __name__ == "__main__":
    main()
