"""Benchmark harness: time Pivot (and DVC, when present) on generated pipelines, and hashing.

Every pipeline operation is a whole process timed by wall clock, with its peak resident memory.
For each size N and each repeat, a fresh copy of the generated project runs, in order: first
full `repro`, no-op `repro`, `status`, `repro` after editing one leaf input, `repro` after
editing one helper, and (Pivot's project) the plain-Python baseline doing all the stages' work.
Pivot and DVC alternate repeat by repeat so that both see the same machine conditions. Then
CPU-bound independent stages run with `-j 1` and `-j 2`. Prints markdown tables to stdout and
writes JSON to benchmarks/results/<timestamp>.json. Imports Pivot only for the hashing part
(pivot.store.hashing).

    python benchmarks/harness.py --sizes 3 --repeats 1 --no-dvc --no-hashing   # seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import generate
import report
import tools
from report import Measurement
from tools import BENCH_DIR, REPO_ROOT, Tool

__all__ = ["main", "parse_args", "run_pipelines", "run_startup", "time_process"]

_STDERR_TAIL = 600
_DVC_LARGEST_DEFAULT = 1000  # DVC's full repro is quadratic: about an hour at N=1000 here
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed process: wall seconds, CPU seconds (user + system, with reaped children),
    peak resident bytes (of the largest process in its tree), or the reason it failed."""

    seconds: float
    failure: str | None
    cpu: float = 0.0
    rss: int = 0


class Collector:
    """Accumulates samples during the run; `measurements()` freezes them."""

    def __init__(self) -> None:
        self._samples: dict[tuple[str, str, str, int], list[float]] = {}
        self._cpu: dict[tuple[str, str, str, int], list[float]] = {}
        self._rss: dict[tuple[str, str, str, int], list[int]] = {}
        self._failures: dict[tuple[str, str, str, int], list[str]] = {}
        self._runs: dict[tuple[str, str, str, int], list[int]] = {}
        self._expected: dict[tuple[str, str, str, int], int] = {}
        self.failed = False

    def add(
        self, key: tuple[str, str, str, int], sample: Sample, runs: tuple[int, int] | None = None
    ) -> None:
        """Record a sample; `runs` is (stages that ran, stages expected to run)."""
        self._samples.setdefault(key, [])
        self._failures.setdefault(key, [])
        if sample.failure is not None:
            self._failures[key].append(sample.failure)
            self.failed = True
            return
        self._samples[key].append(sample.seconds)
        self._cpu.setdefault(key, []).append(sample.cpu)
        self._rss.setdefault(key, []).append(sample.rss)
        if runs is not None:
            self._runs.setdefault(key, []).append(runs[0])
            self._expected[key] = runs[1]

    def measurements(self) -> list[Measurement]:
        return [
            Measurement(
                *key,
                samples=tuple(samples),
                cpu_samples=tuple(self._cpu.get(key, ())),
                rss_samples=tuple(self._rss.get(key, ())),
                failures=tuple(self._failures[key]),
                stages_run=tuple(self._runs.get(key, ())),
                stages_expected=self._expected.get(key),
            )
            for key, samples in self._samples.items()
        ]


# --- processes --------------------------------------------------------------------------------


def time_process(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Run `argv` to completion and return its wall and CPU time and peak resident memory
    (`wait4` of that very process: CPU includes the children it reaped, the memory is the
    largest of them and itself), or why it failed."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        if process.returncode == 0:
            return Sample(seconds, None, cpu, usage.ru_maxrss * _MAXRSS_UNIT)
        output.seek(0)
        tail = output.read().decode(errors="replace").strip()[-_STDERR_TAIL:]
    return Sample(seconds, f"`{shlex.join(argv)}` exited {process.returncode}: {tail}")


# --- pipeline operations ------------------------------------------------------------------------


def _operation_argv(tool: Tool, op: str, jobs: int | None, plain: Sequence[str]) -> list[str]:
    if op == "plain":
        return [tools.project_python(), *plain]
    if op == "status":
        return [*tool.argv, "status"]
    extra = ["-j", str(jobs)] if jobs and tool.name == "pivot" else []
    return [*tool.argv, *tool.repro_args, *extra]


def _prepare(op: str, project: Path, n: int, serial: int) -> None:
    if op == "noop-usual":  # without its snapshot, a no-op `repro` takes the usual path
        (project / ".pivot" / "noop-repro").unlink(missing_ok=True)
    elif op == "leaf":
        generate.edit_leaf_input(project, n, serial)
    elif op == "helper":
        generate.edit_helper(project, serial)


def _commit_instead_of_full(tool: Tool, project: Path, n: int) -> Sample:
    """Bring a DVC project to its reproduced state without `dvc repro` (untimed)."""
    try:
        generate.run_dvc_stages_directly(project, n, sys.executable)
    except RuntimeError as error:
        return Sample(0.0, str(error)[-_STDERR_TAIL:])
    sample = time_process([*tool.argv, "commit", "-f", "-q"], project, tool.environment())
    print(f"  {tool.name} N={n} full: replaced by direct run + commit", file=sys.stderr)
    return sample


def _run_sequence(
    tool: Tool, project: Path, n: int, config: argparse.Namespace, collector: Collector
) -> None:
    """Time the operations on one fresh project; `full` always runs, timed only if asked."""
    env = tool.environment()
    ops, jobs = config.ops, config.jobs
    plain = generate.plain_script(project.parent, n) if "plain" in ops else []
    for serial, op in enumerate(report.OPERATIONS, start=1):
        again = _IMPLIED.get(op) in ops
        if op != "full" and op not in ops and not again:
            continue  # (`noop` and `status` imply their repeats and the usual path)
        if op == "plain" and tool.name != "pivot":
            continue  # the baseline runs once per repeat, in Pivot's project
        if op == "full" and tool.name == "dvc" and n in config.dvc_commit_sizes:
            sample = _commit_instead_of_full(tool, project, n)
            if sample.failure is None:
                continue
            collector.add(("pipeline", tool.name, "commit", n), sample)
            return
        _prepare(op, project, n, serial)
        before = _output_stamps(project)
        sample = time_process(_operation_argv(tool, op, jobs, plain), project, env)
        runs = (_changed(before, _output_stamps(project)), generate.expected_runs(op, n))
        print(f"  {tool.name} N={n} {op}: {_describe(sample)}, ran {runs[0]}", file=sys.stderr)
        if op in ops or again or sample.failure is not None:
            collector.add(("pipeline", tool.name, op, n), sample, runs)
        if sample.failure is not None:
            return  # later operations would measure a broken project


_IMPLIED = {"noop-again": "noop", "noop-usual": "noop", "status-again": "status"}


def _output_stamps(project: Path) -> dict[str, int]:
    """mtime_ns of every stage output: a stage that ran rewrote its output."""
    out = project / "out"
    if not out.is_dir():
        return {}
    with os.scandir(out) as entries:
        return {e.name: e.stat().st_mtime_ns for e in entries if e.name.endswith(".txt")}


def _changed(before: Mapping[str, int], after: Mapping[str, int]) -> int:
    return sum(1 for name, stamp in after.items() if before.get(name) != stamp)


def _describe(sample: Sample) -> str:
    if sample.failure is None:
        return f"{sample.seconds:.3f} s (CPU {sample.cpu:.3f} s, {sample.rss / 2**20:.0f} MiB)"
    return "FAILED " + sample.failure.splitlines()[0][:200]


def _template(tool: Tool, n: int, workdir: Path, collector: Collector) -> Path | None:
    template = workdir / f"template-{tool.name}-{n}"
    if template.exists():
        return template
    try:
        tool.generator(template, n, tool.argv, tool.environment())
    except RuntimeError as error:
        collector.add(("pipeline", tool.name, "generate", n), Sample(0.0, str(error)[:1000]))
        print(f"  {tool.name} N={n}: generation failed: {error}", file=sys.stderr)
        shutil.rmtree(template, ignore_errors=True)
        return None
    _byte_compile(template)
    return template


def _byte_compile(project: Path) -> None:
    """Compile the project's Python modules once, as Pivot's first import of them leaves them
    (checked hash-based .pyc files, PEP 552, which `discovery` reads and plain Python accepts
    too): every timed command, the plain baseline included, then finds their bytecode. (Without
    it the first full run alone would compile the stage modules, about 0.5 s at N=10,000, and
    the plain baseline, which runs later, would not.)"""
    command = [tools.project_python(), "-m", "compileall", "-q", "--invalidation-mode"]
    subprocess.run([*command, "checked-hash", "-x", "/\\.git/", str(project)], check=True)


def _repeats_for(tool: Tool, n: int, config: argparse.Namespace) -> int:
    if tool.name == "dvc":
        if n not in config.dvc_sizes:
            return 0
        return config.dvc_repeats.get(n, config.repeats)
    return config.repeats


def run_pipelines(
    tools: Sequence[Tool], config: argparse.Namespace, workdir: Path, collector: Collector
) -> None:
    """For each size, alternate the tools repeat by repeat on fresh copies of their template."""
    for n in config.sizes:
        templates = {t.name: _template(t, n, workdir, collector) for t in tools}
        most = max((_repeats_for(t, n, config) for t in tools), default=0)
        for repeat in range(most):
            for tool in tools:
                template = templates[tool.name]
                if template is None or repeat >= _repeats_for(tool, n, config):
                    continue
                project = workdir / f"run-{tool.name}-{n}-{repeat}"
                shutil.copytree(template, project, symlinks=True)
                _run_sequence(tool, project, n, config, collector)
                if not config.keep:
                    _set_aside(project, workdir)


SET_ASIDE = "set-aside"
"""Where finished projects wait, in the workdir, to be deleted when all timing is done."""


def _set_aside(project: Path, workdir: Path) -> None:
    """Move a finished project out of the way; it is deleted at the end, not now. On a
    file system that will not reuse the inodes of recently deleted files at once (ext4 without
    a journal skips any freed in the last minute, or six, scanning past each one), deleting
    tens of thousands of files makes every file created in the next minutes slower: the next
    timed run would pay for this harness's clean-up."""
    aside = workdir / SET_ASIDE
    aside.mkdir(exist_ok=True)
    project.rename(aside / f"{project.name}-{time.monotonic_ns()}")


def run_parallel(
    tool: Tool, config: argparse.Namespace, workdir: Path, collector: Collector
) -> None:
    """CPU-bound independent stages: a fresh full `repro -j 1` and `-j 2`, alternating."""
    stages = config.cpu_stages
    iterations = generate.cpu_iterations(config.cpu_seconds)
    template = workdir / f"template-cpu-{stages}"
    try:
        generate.generate_cpu_pivot(template, stages, iterations, tool.argv, tool.environment())
    except RuntimeError as error:
        collector.add(("parallel", tool.name, "generate", stages), Sample(0.0, str(error)[:1000]))
        return
    for repeat in range(config.repeats):
        for jobs in (1, 2):
            project = workdir / f"run-cpu-{jobs}-{repeat}"
            shutil.copytree(template, project, symlinks=True)
            sample = time_process(
                [*tool.argv, "repro", "-j", str(jobs)], project, tool.environment()
            )
            runs = (len(_output_stamps(project)), stages)
            print(
                f"  {tool.name} {stages} CPU-bound stages -j {jobs}: {_describe(sample)}",
                file=sys.stderr,
            )
            collector.add(("parallel", tool.name, f"cpu-j{jobs}", stages), sample, runs)
            _set_aside(project, workdir)


def run_startup(tools: Sequence[Tool], repeats: int, workdir: Path, collector: Collector) -> None:
    """Time `--help` of each tool and a bare interpreter start, as whole processes."""
    commands = [("python", "-c pass", [sys.executable, "-c", "pass"], dict(os.environ))]
    for tool in tools:
        commands.append((tool.name, "help", [*tool.argv, "--help"], tool.environment()))
    for _ in range(repeats):
        for subject, op, argv, env in commands:
            collector.add(("startup", subject, op, 0), time_process(argv, workdir, env))


# --- configuration and main --------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _size_repeats(text: str) -> dict[int, int]:
    pairs = (part.split(":") for part in text.split(",") if part.strip())
    return {int(size): int(count) for size, count in pairs}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_int_list, default=[10, 200, 1000], help="e.g. 10,200")
    parser.add_argument("--repeats", type=int, default=3, help="runs per operation (Pivot)")
    parser.add_argument(
        "--ops", type=lambda t: [op for op in t.split(",") if op], default=list(report.OPERATIONS),
        help=f"subset of {','.join(report.OPERATIONS)}",
    )  # fmt: skip
    parser.add_argument("--pivot", default=None, help="Pivot command (default .venv/bin/pivot)")
    parser.add_argument(
        "--pivot-rev", default=None,
        help="benchmark src/pivot as of this git commit (e.g. HEAD), extracted to the workdir and "
        "run with .venv's python, instead of the live (shared, changing) working tree",
    )  # fmt: skip
    parser.add_argument("--no-pivot", dest="use_pivot", action="store_false", help="DVC only")
    parser.add_argument("--jobs", "-j", type=int, default=None, help="pass -j to pivot repro")
    parser.add_argument(
        "--cpu-stages", type=int, default=8,
        help="independent CPU-bound stages timed with -j 1 and -j 2 (0: skip that part)",
    )  # fmt: skip
    parser.add_argument(
        "--cpu-seconds", type=float, default=0.5, help="CPU seconds of work per CPU-bound stage"
    )
    parser.add_argument("--dvc", default=None, help="DVC command (default benchmarks/.venv-dvc)")
    parser.add_argument("--no-dvc", dest="use_dvc", action="store_false")
    parser.add_argument(
        "--dvc-sizes", type=_int_list, default=None,
        help="sizes DVC runs at (default: those of --sizes up to 1000; DVC is quadratic)",
    )  # fmt: skip
    parser.add_argument(
        "--dvc-repeats", type=_size_repeats, default={}, help="per size, e.g. 1000:1"
    )
    parser.add_argument(
        "--dvc-commit-sizes", type=_int_list, default=[],
        help="sizes where DVC's full repro is replaced (untimed) by running the stages' work "
        "directly and `dvc commit -f`, e.g. 1000: its full repro is quadratic and takes an hour",
    )  # fmt: skip
    parser.add_argument("--hashing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--hash-bytes", type=int, default=1 << 30, help="large file size")
    parser.add_argument("--hash-files", type=int, default=10_000, help="number of small files")
    parser.add_argument("--hash-repeats", type=int, default=3)
    parser.add_argument("--startup-repeats", type=int, default=None, help="default max(5, R)")
    parser.add_argument("--render", type=Path, default=None, help="only print a saved JSON run")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp directory")
    parser.add_argument("--keep", action="store_true", help="keep the generated projects")
    parser.add_argument(
        "--dont-write-bytecode", action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set (default: unset it, as users' machines do)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    unknown = set(args.ops) - set(report.OPERATIONS)
    if unknown:
        parser.error(f"unknown operations {sorted(unknown)}; choose from {list(report.OPERATIONS)}")
    if args.dvc_sizes is None:
        args.dvc_sizes = [n for n in args.sizes if n <= _DVC_LARGEST_DEFAULT]
    return args


def _config_json(config: argparse.Namespace, used: Sequence[Tool]) -> dict[str, object]:
    data = {key: value for key, value in vars(config).items() if key not in ("out", "workdir")}
    data["dvc_repeats"] = {str(k): v for k, v in config.dvc_repeats.items()}
    data["commands"] = {tool.name: list(tool.argv) for tool in used}
    return data


def _run_all(config: argparse.Namespace, workdir: Path, timestamp: str) -> int:
    collector = Collector()
    snapshot = tools.snapshot_pivot(config.pivot_rev, workdir) if config.pivot_rev else None
    pivot_src = snapshot or REPO_ROOT / "src"
    pivot = tools.find_pivot(config.pivot, snapshot) if config.use_pivot else None
    dvc = tools.find_dvc(config.dvc, config.use_dvc, workdir)
    found = [tool for tool in (pivot, dvc) if tool is not None]
    machine = tools.machine_info(timestamp, dvc, config.pivot_rev or "HEAD", pivot_src)
    run_startup(found, config.startup_repeats or max(5, config.repeats), workdir, collector)
    run_pipelines(found, config, workdir, collector)
    if pivot is not None and config.cpu_stages > 0:
        run_parallel(pivot, config, workdir, collector)
    measurements = collector.measurements()
    if config.hashing:
        measurements += _hashing(config, workdir, pivot_src)
    machine["load_average_at_end"] = tools.load_average()
    shutil.rmtree(workdir / SET_ASIDE, ignore_errors=True)
    machine["pivot_source_digest_at_end"] = tools.source_digest(pivot_src)
    out = config.out or BENCH_DIR / "results" / f"{timestamp}.json"
    notes = _notes(config, dvc)
    if machine["pivot_source_digest"] != machine["pivot_source_digest_at_end"]:
        notes.insert(0, "Pivot's source (src/pivot) changed during the run: results mix versions.")
    report.write_json(out, measurements, machine, _config_json(config, found), notes)
    print(report.render_markdown(measurements, machine, notes))
    print(f"JSON written to {out}", file=sys.stderr)
    wrong = [m for m in measurements if any(r != m.stages_expected for r in m.stages_run)]
    return 1 if collector.failed or wrong else 0


def _notes(config: argparse.Namespace, dvc: Tool | None) -> list[str]:
    notes = []
    if dvc is not None:
        for n in sorted(set(config.dvc_commit_sizes) & set(config.sizes) & set(config.dvc_sizes)):
            notes.append(
                f"DVC N={n}: first full `repro` not run (DVC repro is quadratic in N; N=1000 takes about "
                "an hour here); the "
                "reproduced state was made by running the stages' work directly + `dvc commit -f`."
            )
    if not config.dont_write_bytecode:
        notes.append("PYTHONDONTWRITEBYTECODE unset for the timed processes (.pyc files written).")
    return notes


def _hashing(config: argparse.Namespace, workdir: Path, pivot_src: Path) -> list[Measurement]:
    import hashing_bench

    if config.pivot_rev:
        sys.path.insert(0, str(pivot_src))
    elif str(pivot_src) not in sys.path:
        sys.path.append(str(pivot_src))  # only used when pivot is not installed
    data = workdir / "hashing"
    data.mkdir()
    try:
        return hashing_bench.measure_hashing(
            data, config.hash_bytes, config.hash_files, config.hash_repeats
        )
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    if config.render is not None:
        measurements, machine, notes = report.read_json(config.render)
        print(report.render_markdown(measurements, machine, notes))
        return 0
    if not config.dont_write_bytecode:
        # without .pyc files every process recompiles the generated stages.py and helpers
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    if config.workdir is not None:
        config.workdir.mkdir(parents=True, exist_ok=True)
        return _run_all(config, config.workdir, timestamp)
    with tempfile.TemporaryDirectory(prefix="pivot-bench-") as name:
        return _run_all(config, Path(name), timestamp)


if __name__ == "__main__":
    sys.exit(main())
