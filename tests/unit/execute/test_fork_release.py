"""`ForkExecutor.release` ends the forked workers' calls without waiting: they exit on their own
while the process goes on (a `pivot repro` plans again meanwhile), and `shutdown` then reaps
them. Run in a fresh single-threaded process (a test process may have threads: no fork there)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pivot.execute import executors

    assert executors.fork_possible()
    pool = executors.ForkExecutor(2, "epoch-test", sys.argv[1], [])
    pids = [child.pid for child in pool._children]

    def state(pid):  # the process state letter in /proc: Z once it exited, unreaped
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0]

    pool.release()
    deadline = time.monotonic() + 20
    while any(state(pid) != "Z" for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    print("exited", all(state(pid) == "Z" for pid in pids))  # alone: nothing waited for them
    pool.shutdown()
    reaped = []
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
            reaped.append(False)
        except ChildProcessError:  # no longer a child: shutdown waited for it
            reaped.append(True)
    print("reaped", all(reaped))
    pool.shutdown()  # idempotent
    print("again ok")
    """
)


def test_released_workers_exit_alone_and_shutdown_reaps_them(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["exited True", "reaped True", "again ok"]
