"""End to end: the operating system refusing Pivot's writes (a file-size limit, a path too long)
gives a Pivot error naming the path and the fix, never a traceback or a blame on the user's value."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.e2e.conftest import cli_env

if TYPE_CHECKING:
    from tests.e2e.conftest import E2EProject

PIPELINE = """
def big(raw: Annotated[str, Dep("raw.txt", loaders.Text())]) -> Annotated[str, Out("big.txt", loaders.Text())]:
    return raw * (2 * 1024 * 1024)


pipeline = Pipeline("big")
pipeline.register(big)
"""


def _limit_file_size() -> None:
    """In the child: files may not grow past 1 MiB (EFBIG, a real OS error, instead of death)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))


def test_an_output_the_file_system_refuses_names_the_path_and_the_fix(project: E2EProject) -> None:
    project.gen({"raw.txt": "x"})
    project.pipeline(PIPELINE)

    result = subprocess.run(
        [sys.executable, "-m", "pivot", "repro", "-j", "1"],
        cwd=project.root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "big.txt" in output and "Fix:" in output
    assert "check the value returned" not in output and "Traceback" not in output
    assert not (project.root / ".pivot" / "stages" / "big.lock").exists()
