"""The tools to benchmark and the machine they run on; imports no Pivot (it runs Pivot's CLI).

Pivot is found as `.venv/bin/pivot`, `pivot` on PATH, or run from a snapshot of `src/pivot` at
a commit; DVC as `benchmarks/.venv-dvc/bin/dvc`, `python -m dvc` or `dvc` on PATH.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import generate

__all__ = [
    "BENCH_DIR",
    "REPO_ROOT",
    "Tool",
    "find_dvc",
    "find_pivot",
    "load_average",
    "machine_info",
    "project_python",
    "snapshot_pivot",
    "source_digest",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
_PIVOT_MAIN = "import sys; from pivot.cli.main import main; sys.exit(main())"


@dataclasses.dataclass(frozen=True)
class Tool:
    """How to drive one tool: its command, environment and project generator."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    generator: Callable[[Path, int, Sequence[str], Mapping[str, str]], None]
    repro_args: tuple[str, ...] = ("repro",)

    def environment(self) -> dict[str, str]:
        return {**os.environ, **dict(self.env)}


def _command(spec: str) -> tuple[str, ...]:
    """Split a command line; a relative program path becomes absolute (tools run elsewhere)."""
    argv = shlex.split(spec)
    if Path(argv[0]).exists():
        argv[0] = str(Path(argv[0]).resolve())
    return tuple(argv)


def snapshot_pivot(rev: str, workdir: Path) -> Path:
    """Extract src/pivot at commit `rev` (the shared working tree changes under a long run),
    byte-compiled as `pip install` leaves a package: else the first timed command writes
    `__pycache__` into Pivot's own source directories, which its no-op snapshot then cannot
    trust (they changed while it ran)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", rev, "src/pivot"],
        capture_output=True, check=True,
    )  # fmt: skip
    target = workdir / "pivot-snapshot"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    subprocess.run([project_python(), "-m", "compileall", "-q", str(target / "src")], check=True)
    return target / "src"


def project_python() -> str:
    """The project's `.venv` interpreter (it imports Pivot), else this one."""
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.is_file() else sys.executable


def _snapshot_tool(src: Path) -> Tool:
    return Tool(
        "pivot",
        (project_python(), "-c", _PIVOT_MAIN),
        (("PYTHONPATH", str(src)),),
        generate.generate_pivot,
    )


def find_pivot(spec: str | None, snapshot: Path | None = None) -> Tool:
    """Pivot run from `snapshot` (a src directory), from the command `spec`, or as installed."""
    if snapshot is not None:
        return _snapshot_tool(snapshot)
    if spec:
        return Tool("pivot", _command(spec), (), generate.generate_pivot)
    for candidate in (REPO_ROOT / ".venv" / "bin" / "pivot", shutil.which("pivot")):
        if candidate and Path(candidate).is_file():
            return Tool("pivot", (str(candidate),), (), generate.generate_pivot)
    pythonpath = os.pathsep.join(
        filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")])
    )
    argv = (sys.executable, "-c", _PIVOT_MAIN)
    return Tool("pivot", argv, (("PYTHONPATH", pythonpath),), generate.generate_pivot)


def _python_shim(workdir: Path) -> Path:
    """A directory whose `python` is this interpreter, for DVC stage commands."""
    shim = workdir / "bin"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "python"
    if not link.exists():
        link.symlink_to(sys.executable)
    return shim


def find_dvc(spec: str | None, enabled: bool, workdir: Path) -> Tool | None:
    """DVC from the command `spec` or as found; None (with a message) when absent."""
    if not enabled:
        return None
    argv: tuple[str, ...] | None = _command(spec) if spec else None
    venv_dvc = BENCH_DIR / ".venv-dvc" / "bin" / "dvc"
    if argv is None and venv_dvc.is_file():
        argv = (str(venv_dvc),)
    if argv is None and importlib.util.find_spec("dvc") is not None:
        argv = (sys.executable, "-m", "dvc")
    if argv is None and (found := shutil.which("dvc")):
        argv = (found,)
    if argv is None:
        print("DVC not found (run benchmarks/run.sh to make its venv): Pivot only", file=sys.stderr)
        return None
    path = os.pathsep.join([str(_python_shim(workdir)), os.environ.get("PATH", "")])
    env = (("PATH", path), ("DVC_NO_ANALYTICS", "1"))
    return Tool("dvc", argv, env, generate.generate_dvc)


def _version(tool: Tool | None) -> str | None:
    if tool is None:
        return None
    completed = subprocess.run(
        [*tool.argv, "--version"], env=tool.environment(), capture_output=True, text=True
    )
    return completed.stdout.strip() or None


def _git_commit(rev: str, *, dirty: bool) -> str:
    completed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", rev], capture_output=True, text=True
    )
    changes = ""
    if dirty:
        changes = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    return completed.stdout.strip() + ("+dirty" if changes else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(
    timestamp: str, dvc: Tool | None, pivot_rev: str, pivot_src: Path
) -> dict[str, object]:
    """What the run ran on: CPUs, Python, Pivot's commit and source digest, DVC's version."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "timestamp": timestamp,
        "cpus": cpus,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pivot_commit": _git_commit(pivot_rev, dirty=pivot_src == REPO_ROOT / "src"),
        "dvc_version": _version(dvc),
        "load_average_at_start": load_average(),
        "pivot_source_digest": source_digest(pivot_src),
    }


def source_digest(src: Path) -> str:
    """Digest of src/pivot's files: tells whether Pivot's code changed during the run."""
    digest = hashlib.sha256()
    for path in sorted((src / "pivot").rglob("*.py")):
        digest.update(path.relative_to(src).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
