"""Push/pull throughput: Pivot against DVC 3.x on the same data, to a directory remote and to a
local S3 server (SeaweedFS, started here on 127.0.0.1 and stopped at the end).

Data: many small files (default 10,000 x 4 KiB) and a few large ones (default 3 x 200 MB), each
set tracked as a directory (`pivot track` / `dvc add`). For each tool, remote kind and set:
push from the project, then pull into a fresh clone (an empty cache). Prints a table with the
seconds, files/s and MB/s, and Pivot's speed-up over DVC; `--out` also writes JSON.

    .venv/bin/python benchmarks/remote_bench.py            # the full run (needs benchmarks/.venv-dvc)
    .venv/bin/python benchmarks/remote_bench.py --small 500 --large 1 --large-mb 20 --no-dvc
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.servers.seaweedfs import S3Server, start_seaweedfs  # noqa: E402


def _run(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run a command; return its wall time in seconds (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def _make_data(root: Path, small: int, small_size: int, large: int, large_mb: int) -> None:
    (root / "small").mkdir(parents=True)
    for index in range(small):
        (root / "small" / f"f{index:06}.bin").write_bytes(os.urandom(small_size))
    (root / "large").mkdir()
    for index in range(large):
        with open(root / "large" / f"big{index}.bin", "wb") as handle:
            for _ in range(large_mb):
                handle.write(os.urandom(1024 * 1024))


def _disk_copy_speed(source: Path, scratch: Path) -> float:
    """MB/s of copying the large files on this disk (the 'disk speed' reference)."""
    target = scratch / "disk-copy"
    start = time.perf_counter()
    shutil.copytree(source / "large", target)
    os.sync()
    elapsed = time.perf_counter() - start
    size = sum(p.stat().st_size for p in target.iterdir())
    shutil.rmtree(target)
    return size / 1e6 / elapsed


class Pivot:
    name = "pivot"

    def __init__(self) -> None:
        self.exe = str(Path(sys.executable).with_name("pivot"))

    def prepare(self, project: Path, data: Path, url: str, server: S3Server | None) -> None:
        project.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        _run([self.exe, "init"], project)
        shutil.copytree(data, project / "data", copy_function=os.link)
        _run([self.exe, "remote", "add", "-d", "bench", url], project)
        if server is not None:
            for key, value in (
                ("endpoint", server.endpoint),
                ("allow_http", "true"),
                ("access_key_id", server.access_key),
                ("secret_access_key", server.secret_key),
            ):
                _run([self.exe, "remote", "modify", "bench", key, value, "--local"], project)

    def add(self, project: Path, what: str) -> float:
        return _run([self.exe, "track", f"data/{what}"], project)

    def push(self, project: Path, what: str) -> float:
        return _run([self.exe, "push", f"data/{what}"], project)

    def clone(self, project: Path, clone: Path) -> None:
        shutil.copytree(project, clone, ignore=shutil.ignore_patterns("cache", "state.db*"))
        for what in ("small", "large"):
            shutil.rmtree(clone / "data" / what, ignore_errors=True)

    def pull(self, clone: Path, what: str) -> float:
        return _run([self.exe, "pull", f"data/{what}"], clone)


class Dvc:
    name = "dvc"

    def __init__(self, exe: str) -> None:
        self.exe = exe

    def prepare(self, project: Path, data: Path, url: str, server: S3Server | None) -> None:
        project.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        _run([self.exe, "init", "-q"], project)
        _run([self.exe, "config", "core.analytics", "false"], project)
        shutil.copytree(data, project / "data", copy_function=os.link)
        _run([self.exe, "remote", "add", "-d", "bench", url], project)
        if server is not None:
            for key, value in (
                ("endpointurl", server.endpoint),
                ("access_key_id", server.access_key),
                ("secret_access_key", server.secret_key),
            ):
                _run([self.exe, "remote", "modify", "--local", "bench", key, value], project)

    def add(self, project: Path, what: str) -> float:
        return _run([self.exe, "add", "-q", f"data/{what}"], project)

    def push(self, project: Path, what: str) -> float:
        return _run([self.exe, "push", "-q", f"data/{what}.dvc"], project)

    def clone(self, project: Path, clone: Path) -> None:
        shutil.copytree(project, clone, ignore=shutil.ignore_patterns("cache", "tmp"))
        for what in ("small", "large"):
            shutil.rmtree(clone / "data" / what, ignore_errors=True)

    def pull(self, clone: Path, what: str) -> float:
        return _run([self.exe, "pull", "-q", f"data/{what}.dvc"], clone)


def _find_dvc() -> str | None:
    candidate = BENCH_DIR / ".venv-dvc" / "bin" / "dvc"
    return str(candidate) if candidate.exists() else shutil.which("dvc")


@contextlib.contextmanager
def _remote(kind: str, scratch: Path, name: str) -> Iterator[tuple[str, S3Server | None]]:
    if kind == "directory":
        path = scratch / f"remote-{name}"
        path.mkdir()
        yield str(path), None
        return
    with start_seaweedfs(scratch / f"seaweedfs-{name}") as server:
        yield f"s3://{server.create_bucket()}/{name}", server


def _measure(tool: Pivot | Dvc, kind: str, data: Path, scratch: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    with _remote(kind, scratch, f"{tool.name}-{kind}") as (url, server):
        env_free = scratch / f"{tool.name}-{kind}"
        project, clone = env_free / "project", env_free / "clone"
        env_free.mkdir()
        tool.prepare(project, data, url, server)
        for what in ("small", "large"):
            times[f"add {what}"] = tool.add(project, what)
            times[f"push {what}"] = tool.push(project, what)
        tool.clone(project, clone)
        for what in ("small", "large"):
            times[f"pull {what}"] = tool.pull(clone, what)
        shutil.rmtree(env_free)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="number of small files")
    parser.add_argument("--small-size", type=int, default=4096, help="bytes per small file")
    parser.add_argument("--large", type=int, default=3, help="number of large files")
    parser.add_argument("--large-mb", type=int, default=200, help="MB per large file")
    parser.add_argument("--kinds", default="directory,s3", help="remote kinds to measure")
    parser.add_argument("--no-dvc", action="store_true", help="measure Pivot only")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    tools: list[Pivot | Dvc] = [Pivot()]
    dvc = None if args.no_dvc else _find_dvc()
    if dvc:
        tools.append(Dvc(dvc))
    elif not args.no_dvc:
        print("DVC not found (bash benchmarks/run.sh makes benchmarks/.venv-dvc); Pivot only")
    scratch = Path(tempfile.mkdtemp(prefix="pivot-remote-bench-", dir=args.workdir))
    try:
        data = scratch / "data"
        _make_data(data, args.small, args.small_size, args.large, args.large_mb)
        disk = _disk_copy_speed(data, scratch)
        sizes = {
            "small": (args.small, args.small * args.small_size),
            "large": (args.large, args.large * args.large_mb * 1024 * 1024),
        }
        results = {
            (tool.name, kind): _measure(tool, kind, data, scratch)
            for kind in args.kinds.split(",")
            for tool in tools
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _print_table(results, sizes, disk)
    if args.out:
        document = {f"{tool} {kind}": times for (tool, kind), times in results.items()}
        args.out.write_text(json.dumps({"results": document, "disk_copy_mb_s": disk}, indent=2))
    return 0


def _print_table(
    results: dict[tuple[str, str], dict[str, float]],
    sizes: dict[str, tuple[int, int]],
    disk: float,
) -> None:
    print(f"disk copy speed (large files): {disk:,.0f} MB/s; {os.cpu_count()} CPUs")
    print(f"{'operation':<12} {'remote':<10} {'tool':<6} {'seconds':>8} {'files/s':>9} {'MB/s':>8}"
          f" {'pivot x':>8}")  # fmt: skip
    for (tool, kind), times in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        for operation, seconds in times.items():
            what = operation.split()[1]
            count, size = sizes[what]
            ratio = ""
            if tool == "pivot" and ("dvc", kind) in results:
                ratio = f"{results[('dvc', kind)][operation] / seconds:.1f}x"
            print(
                f"{operation:<12} {kind:<10} {tool:<6} {seconds:>8.2f} {count / seconds:>9,.0f}"
                f" {size / 1e6 / seconds:>8,.1f} {ratio:>8}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
