"""Results of a benchmark run as values, rendered as markdown tables and JSON; imports no Pivot.

A `Measurement` is one timed thing (an operation of one tool at one size, a start-up command,
a hashing method) with all its samples; `render_markdown` puts Pivot and DVC side by side
with the targets and the peer figures, shows Pivot's cost per stage against N with the ratio
goals (against a plain Python process doing all the stages' work), and `write_json` keeps
everything for run-to-run comparison.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "OPERATIONS",
    "PEER_DVC_367",
    "TARGETS",
    "Measurement",
    "read_json",
    "render_markdown",
    "write_json",
]

# operation key -> label, in the order they run on one project
OPERATIONS: dict[str, str] = {
    "full": "first full `repro`",
    "noop": "no-op `repro`",
    "noop-usual": "no-op `repro` without the snapshot (imports pipeline.py and plans)",
    "status": "`status`, nothing changed",
    "noop-again": "no-op `repro` again (the no-op snapshot answers)",
    "status-again": "`status` again (the no-op snapshot answers)",
    "leaf": "`repro` after editing one leaf input",
    "helper": "`repro` after editing a helper used by 1/10 of stages",
    "plain": "plain Python doing every stage's work (baseline, no tool)",
}

# Pivot's targets in seconds, keyed by (operation, N); N=0 means any size
TARGETS: dict[tuple[str, int], float] = {
    ("full", 200): 2.5,
    ("noop", 200): 0.25,
    ("noop", 1000): 0.6,
    ("status", 200): 0.25,
    ("status", 1000): 0.6,
    ("leaf", 200): 0.4,
    ("noop", 10_000): 0.7,
    ("status", 10_000): 0.7,
    ("noop", 100_000): 6.0,
    ("status", 100_000): 6.0,
    ("help", 0): 0.15,
}
PER_STAGE_TARGET_MS = 5.0
PER_STAGE_TARGET_N = 200  # the per-stage target is set for N=200 (pool start-up dominates N=10)

# Goals of the scaling table (issue 16), checked at these sizes and above
SCALE_GOAL_FROM_N = 10_000
NOOP_MS_PER_STAGE_GOAL = 0.05  # no-op `repro` and `status`
OWN_MS_PER_STAGE_GOAL = 0.5  # full `repro` minus the plain baseline, per stage
# (operation, reference operation) -> the most operation/reference may be, at one size
RATIO_GOALS: dict[tuple[str, str], float] = {
    ("noop", "plain"): 1.0,
    ("noop-usual", "plain"): 1.0,
    ("full", "plain"): 7.0,
    ("helper", "noop-usual"): 1.5,  # a code edit takes the usual path: against that
}
NOOP_RSS_GOAL_BYTES = 2 * 10**9  # no-op at N=100,000
PARALLEL_SPEEDUP_GOAL = 1.8  # -j 2 against -j 1 on CPU-bound stages

# DVC 3.67 figures measured earlier on this kind of machine, in seconds
PEER_DVC_367: dict[tuple[str, int], float] = {
    ("full", 10): 0.96,
    ("noop", 10): 0.51,
    ("status", 10): 0.37,
    ("leaf", 10): 0.81,
    ("full", 200): 47.5,
    ("noop", 200): 2.02,
    ("status", 200): 1.00,
    ("leaf", 200): 4.81,
}


@dataclasses.dataclass(frozen=True)
class Measurement:
    """All samples (seconds) of one timed thing, and the failures met while timing it."""

    section: str  # "pipeline", "startup" or "hashing"
    subject: str  # the tool ("pivot", "dvc", "python"), or for hashing the data set
    op: str
    n: int
    samples: tuple[float, ...]
    cpu_samples: tuple[float, ...] = ()  # user + system seconds of the process and its children
    rss_samples: tuple[int, ...] = ()  # peak resident bytes of the process (or its largest child)
    failures: tuple[str, ...] = ()
    size_bytes: int = 0
    files: int = 0
    stages_run: tuple[int, ...] = ()  # per sample: outputs rewritten by the operation
    stages_expected: int | None = None  # what a correct tool runs

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["median"] = self.median
        data["min"] = min(self.samples) if self.samples else None
        data["max"] = max(self.samples) if self.samples else None
        data["cpu_median"] = statistics.median(self.cpu_samples) if self.cpu_samples else None
        data["rss_max"] = max(self.rss_samples) if self.rss_samples else None
        return data


def _seconds(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _cell(measurement: Measurement | None) -> str:
    if measurement is None:
        return "-"
    if not measurement.samples:
        return "FAILED" if measurement.failures else "-"
    cell = _seconds(statistics.median(measurement.samples))
    if len(measurement.samples) > 1:
        cell += f" ({_seconds(min(measurement.samples))}-{_seconds(max(measurement.samples))})"
    if measurement.failures:
        cell += f" [{len(measurement.failures)} failed]"
    wrong = sorted({r for r in measurement.stages_run if r != measurement.stages_expected})
    if wrong:
        ran = "/".join(str(r) for r in wrong)
        cell += f" [ran {ran} stages, expected {measurement.stages_expected}]"
    return cell


def _bytes(value: float) -> str:
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def _rss_cell(measurement: Measurement | None) -> str:
    if measurement is None or not any(measurement.rss_samples):
        return "-"
    return _bytes(max(measurement.rss_samples))


def _cpu_cell(measurement: Measurement | None) -> str:
    if measurement is None or not measurement.cpu_samples:
        return "-"
    return _seconds(statistics.median(measurement.cpu_samples))


def _ratio(pivot: Measurement | None, dvc: Measurement | None) -> str:
    if pivot is None or dvc is None or pivot.median is None or dvc.median is None:
        return "-"
    return f"{pivot.median / dvc.median:.3f} (DVC {dvc.median / pivot.median:.1f}x slower)"


def _target(op: str, n: int, pivot: Measurement | None) -> str:
    target = TARGETS.get((op, n))
    if target is None:
        return "-"
    verdict = ""
    if pivot is not None and pivot.median is not None:
        verdict = " ok" if pivot.median < target else " MISSED"
    return f"< {_seconds(target)}{verdict}"


def _index(measurements: Sequence[Measurement]) -> dict[tuple[str, str, str, int], Measurement]:
    return {(m.section, m.subject, m.op, m.n): m for m in measurements}


def _pipeline_table(measurements: Sequence[Measurement]) -> list[str]:
    found = _index(measurements)
    sizes = sorted({m.n for m in measurements if m.section == "pipeline"})
    lines = [
        "| N | operation | Pivot median (min-max) | DVC median (min-max) | Pivot/DVC "
        "| Pivot target | DVC 3.67 earlier | Pivot CPU | DVC CPU | Pivot peak RSS |",
        "|---:|---|---|---|---|---|---|---:|---:|---:|",
    ]
    for n in sizes:
        for op, label in OPERATIONS.items():
            pivot = found.get(("pipeline", "pivot", op, n))
            dvc = found.get(("pipeline", "dvc", op, n))
            if pivot is None and dvc is None:
                continue
            peer = PEER_DVC_367.get((op, n))
            lines.append(
                f"| {n} | {label} | {_cell(pivot)} | {_cell(dvc)} | {_ratio(pivot, dvc)} "
                f"| {_target(op, n, pivot)} | {_seconds(peer) if peer else '-'} "
                f"| {_cpu_cell(pivot)} | {_cpu_cell(dvc)} | {_rss_cell(pivot)} |"
            )
        lines.append(_per_stage_row(found, n))
    return [line for line in lines if line]


def _per_stage_row(found: Mapping[tuple[str, str, str, int], Measurement], n: int) -> str:
    def per_stage(tool: str) -> float | None:
        full = found.get(("pipeline", tool, "full", n))
        noop = found.get(("pipeline", tool, "noop-usual", n)) or found.get(
            ("pipeline", tool, "noop", n)
        )
        if full is None or noop is None or full.median is None or noop.median is None:
            return None
        return (full.median - noop.median) / n * 1000

    pivot, dvc = per_stage("pivot"), per_stage("dvc")
    if pivot is None and dvc is None:
        return ""
    target = "-"
    if n == PER_STAGE_TARGET_N:
        verdict = "" if pivot is None else (" ok" if pivot < PER_STAGE_TARGET_MS else " MISSED")
        target = f"< {PER_STAGE_TARGET_MS:.0f} ms{verdict}"
    pivot_cell = "-" if pivot is None else f"{pivot:.2f} ms"
    dvc_cell = "-" if dvc is None else f"{dvc:.2f} ms"
    return (
        f"| {n} | full `repro` cost per stage, (full - no-op) / N | {pivot_cell} | {dvc_cell} "
        f"| - | {target} | - | - | - | - |"
    )


_PER_STAGE_OPS = (
    "noop",
    "noop-usual",
    "status",
    "noop-again",
    "status-again",
    "full",
    "helper",
    "plain",
)
_NOOP_OPS = ("noop", "status", "noop-again", "status-again")  # the per-stage no-op goal

Found = Mapping[tuple[str, str, str, int], Measurement]
Figure = Callable[[str, int], "float | None"]  # (operation, N) -> seconds of Pivot, or None


def _wall(found: Found) -> Figure:
    def median(op: str, n: int) -> float | None:
        measurement = found.get(("pipeline", "pivot", op, n))
        return None if measurement is None else measurement.median

    return median


def _cpu(found: Found) -> Figure:
    def median(op: str, n: int) -> float | None:
        measurement = found.get(("pipeline", "pivot", op, n))
        if measurement is None or not measurement.cpu_samples:
            return None
        return statistics.median(measurement.cpu_samples)

    return median


def _verdict(ok: bool) -> str:
    return " ok" if ok else " MISSED"


def _ratio_cell(figure: Figure, op: str, reference: str, n: int) -> str:
    value, base = figure(op, n), figure(reference, n)
    if value is None or not base:
        return "-"
    ratio = value / base
    goal = RATIO_GOALS[(op, reference)]
    return f"{ratio:.2f}x" + (_verdict(ratio <= goal) if n >= SCALE_GOAL_FROM_N else "")


def _scale_row(found: Found, figure: Figure, n: int) -> str:
    cells = []
    for op in _PER_STAGE_OPS:
        median = figure(op, n)
        cell = "-" if median is None else f"{median / n * 1000:.3f}"
        if median is not None and op in _NOOP_OPS and n >= SCALE_GOAL_FROM_N:
            cell += _verdict(median / n * 1000 <= NOOP_MS_PER_STAGE_GOAL)
        cells.append(cell)
    full, plain = figure("full", n), figure("plain", n)
    own = "-"
    if full is not None and plain is not None:
        per_stage = (full - plain) / n * 1000
        own = f"{per_stage:.3f}"
        own += _verdict(per_stage <= OWN_MS_PER_STAGE_GOAL) if n >= SCALE_GOAL_FROM_N else ""
    ratios = [_ratio_cell(figure, op, ref, n) for op, ref in RATIO_GOALS]
    noops = [found.get(("pipeline", "pivot", op, n)) for op in ("noop", "noop-usual")]
    measured = [m for m in noops if m is not None and any(m.rss_samples)]
    memory = " / ".join(_rss_cell(m) for m in noops)
    if measured and n >= 100_000:
        memory += _verdict(max(max(m.rss_samples) for m in measured) < NOOP_RSS_GOAL_BYTES)
    return f"| {n:,} | " + " | ".join([*cells, own, *ratios, memory]) + " |"


def _fit(figure: Figure, op: str, sizes: Sequence[int]) -> str:
    """Least-squares `a + b N` over the sizes measured (medians), as "a s + b ms per stage"."""
    points = [(n, m) for n in sizes if (m := figure(op, n)) is not None]
    if len(points) < 2:
        return "-"
    mean_n = statistics.fmean(n for n, _ in points)
    mean_t = statistics.fmean(t for _, t in points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    slope = sum((n - mean_n) * (t - mean_t) for n, t in points) / spread
    return f"{mean_t - slope * mean_n:.2f} s + {slope * 1000:.3f} ms/stage"


def _scale_lines(measurements: Sequence[Measurement], by: Callable[[Found], Figure]) -> list[str]:
    """Pivot's cost per stage against N, the ratio goals, and the no-op's memory."""
    found = _index(measurements)
    figure = by(found)
    sizes = sorted({m.n for m in measurements if m.section == "pipeline" and m.subject == "pivot"})
    if not sizes:
        return []
    ratio_heads = [f"{op} / {ref} (goal <= {goal:g}x)" for (op, ref), goal in RATIO_GOALS.items()]
    heads = [
        "N",
        *(f"{op} ms/stage" for op in _PER_STAGE_OPS),
        f"(full - plain) / N ms (goal <= {OWN_MS_PER_STAGE_GOAL:g})",
        *ratio_heads,
        "no-op / usual no-op peak RSS",
    ]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---:|" * len(heads)]
    lines += [_scale_row(found, figure, n) for n in sizes]
    fits = [_fit(figure, op, sizes) for op in _PER_STAGE_OPS]
    if any(fit != "-" for fit in fits):
        rest = len(heads) - 1 - len(_PER_STAGE_OPS)
        lines.append("| fit over N | " + " | ".join(fits) + " |" + " - |" * rest)
    return lines


def _scale_table(measurements: Sequence[Measurement]) -> list[str]:
    return _scale_lines(measurements, _wall)


def _scale_table_cpu(measurements: Sequence[Measurement]) -> list[str]:
    return _scale_lines(measurements, _cpu)


def _parallel_table(measurements: Sequence[Measurement]) -> list[str]:
    found = _index(measurements)
    counts = sorted({m.n for m in measurements if m.section == "parallel"})
    lines = [
        "| stages | `repro -j 1` | `repro -j 2` | speed-up (-j 1 / -j 2) | goal | -j 1 CPU | -j 2 CPU |",
        "|---:|---|---|---|---|---:|---:|",
    ]
    for n in counts:
        one = found.get(("parallel", "pivot", "cpu-j1", n))
        two = found.get(("parallel", "pivot", "cpu-j2", n))
        speedup = "-"
        if one and two and one.median and two.median:
            value = one.median / two.median
            speedup = f"{value:.2f}x{_verdict(value >= PARALLEL_SPEEDUP_GOAL)}"
        lines.append(
            f"| {n} | {_cell(one)} | {_cell(two)} | {speedup} | >= {PARALLEL_SPEEDUP_GOAL}x "
            f"| {_cpu_cell(one)} | {_cpu_cell(two)} |"
        )
    return lines


def _startup_table(measurements: Sequence[Measurement]) -> list[str]:
    rows = [m for m in measurements if m.section == "startup"]
    lines = ["| command | median (min-max) | target | CPU |", "|---|---|---|---:|"]
    for m in rows:
        target = TARGETS.get((m.op, 0)) if m.subject == "pivot" else None
        verdict = ""
        if target is not None and m.median is not None:
            verdict = " ok" if m.median < target else " MISSED"
        target_cell = f"< {_seconds(target)}{verdict}" if target is not None else "-"
        lines.append(f"| {m.subject}: `{m.op}` | {_cell(m)} | {target_cell} | {_cpu_cell(m)} |")
    return lines


def _throughput(m: Measurement) -> str:
    if m.median is None or m.median <= 0:
        return "-"
    parts = [f"{m.size_bytes / m.median / 1e6:,.0f} MB/s"]
    if m.files > 1:
        parts.append(f"{m.files / m.median:,.0f} files/s")
    return ", ".join(parts)


def _hashing_table(measurements: Sequence[Measurement]) -> list[str]:
    rows = [m for m in measurements if m.section == "hashing"]
    raw = {(m.subject, m.op.split(" ")[-1]): m for m in rows if m.op.startswith("raw read")}
    lines = [
        "| data | method | median (min-max) | throughput | time / raw read (same cache) |",
        "|---|---|---|---|---|",
    ]
    for m in rows:
        reference = raw.get((m.subject, m.op.split(" ")[-1]))
        relative = "-"
        if reference is not None and reference.median and m.median is not None:
            relative = f"{m.median / reference.median:.2f}x"
        lines.append(f"| {m.subject} | {m.op} | {_cell(m)} | {_throughput(m)} | {relative} |")
    return lines


def _failure_lines(measurements: Sequence[Measurement]) -> list[str]:
    counts: dict[tuple[str, str, int, str], int] = {}
    for m in measurements:
        for failure in m.failures:
            key = (m.subject, m.op, m.n, failure)
            counts[key] = counts.get(key, 0) + 1
    lines = []
    for (subject, op, n, failure), count in counts.items():
        times = f" ({count} times)" if count > 1 else ""
        where = f" N={n}" if n else ""
        lines.append(f"- {subject} {op}{where}{times}:\n\n```\n{failure}\n```")
    return lines


def _wrong_work_lines(measurements: Sequence[Measurement]) -> list[str]:
    lines = []
    for m in measurements:
        wrong = [r for r in m.stages_run if r != m.stages_expected]
        if wrong:
            lines.append(
                f"- {m.subject} N={m.n} {OPERATIONS.get(m.op, m.op)}: rewrote {wrong} outputs "
                f"in {len(wrong)} of {len(m.stages_run)} runs; a correct run rewrites "
                f"{m.stages_expected}"
            )
    return lines


def render_markdown(
    measurements: Sequence[Measurement], machine: Mapping[str, Any], notes: Sequence[str] = ()
) -> str:
    """The run as markdown: a heading line about the machine, then one table per section."""
    parts = [
        f"Benchmark of {machine.get('timestamp', '?')} on {machine.get('cpus', '?')} CPUs "
        f"({machine.get('cpu_model', '?')}), Python {machine.get('python', '?')}, "
        f"Pivot {machine.get('pivot_commit', '?')}, DVC {machine.get('dvc_version') or 'absent'}; "
        f"load average {machine.get('load_average_at_start')} at start, "
        f"{machine.get('load_average_at_end')} at end.",
    ]
    sections = (
        ("pipeline", "Pipeline operations (whole-process wall time)", _pipeline_table),
        ("pipeline", "Pivot per stage against N: wall time (medians / N)", _scale_table),
        (
            "pipeline",
            "Pivot per stage against N: CPU time (user + system with reaped workers; steadier "
            "than wall time on a busy machine)",
            _scale_table_cpu,
        ),
        ("parallel", "CPU-bound independent stages, -j 2 against -j 1", _parallel_table),
        ("startup", "Start-up (whole-process wall time)", _startup_table),
        ("hashing", "Hashing (in-process)", _hashing_table),
    )
    for key, title, table in sections:
        section = [m for m in measurements if m.section == key]
        if section:
            parts += ["", f"### {title}", "", *table(section)]
    if notes:
        parts += ["", "### Notes", "", *(f"- {note}" for note in notes)]
    failures = _failure_lines(measurements)
    if failures:
        parts += ["", "### Failures", "", *failures]
    wrong = _wrong_work_lines(measurements)
    if wrong:
        parts += ["", "### Wrong amount of work (the timing measures something else)", "", *wrong]
    return "\n".join(parts) + "\n"


def read_json(path: Path) -> tuple[list[Measurement], dict[str, Any], list[str]]:
    """Measurements, machine and notes of a JSON file written by `write_json`."""
    document = json.loads(path.read_text())
    fields = {field.name for field in dataclasses.fields(Measurement)}
    measurements = []
    for data in document["measurements"]:
        values = {key: value for key, value in data.items() if key in fields}
        for key in ("samples", "cpu_samples", "rss_samples", "failures", "stages_run"):
            values[key] = tuple(values.get(key, ()))
        measurements.append(Measurement(**values))
    return measurements, document["machine"], document.get("notes", [])


def write_json(
    path: Path,
    measurements: Sequence[Measurement],
    machine: Mapping[str, Any],
    config: Any,
    notes: Sequence[str] = (),
) -> None:
    """Write the whole run to `path` atomically (temp file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": 1,
        "machine": dict(machine),
        "config": config,
        "notes": list(notes),
        "measurements": [m.as_json() for m in measurements],
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)
