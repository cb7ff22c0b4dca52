"""Write a benchmark project of N small stages for Pivot or DVC; imports nothing of Pivot's.

The shape repeats in groups of ten stages (k = position in the group, b = the group's first
stage):

    k=0          source: reads the group's leaf input data/in_GGG.txt
    k=1..3       chain: each reads the previous stage's output
    k=4..7       fan-out: each reads the output of k=3
    k=8          fan-in: reads the outputs of k=4..7
    k=9          fan-in across groups: reads k=8 and the previous group's k=8

Stage k uses helper module helpers/hK.py, so each helper is used by a tenth of the stages.
Editing the last group's leaf input re-runs that group only (at most ten stages); editing a
helper's no-op `revision` line changes its code but not its output, so exactly the stages
using it re-run and nothing downstream does.

Both tools get the same files under data/ and helpers/; Pivot gets `stages.py` (N module-level
stage functions; above 1000 stages, `stages.py` plus `stages_001.py`, ... of 1000 each, as a
user would split them) and `pipeline.py`, DVC gets `dvc.yaml` whose stages run `bench_stage.py`,
a tiny script doing the same work. Each project is a git repository with the tool initialised
and one commit.

`plain_script` is the baseline the ratios are taken against: one plain Python process that
imports the same stage functions and does every stage's work in order (read the inputs, call
the function, write the output), with no tool at all. `generate_cpu_pivot` writes the other
shape: independent CPU-bound stages, to compare `-j 2` with `-j 1`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "GROUP",
    "HELPER_TO_EDIT",
    "StageShape",
    "build_shape",
    "cpu_iterations",
    "edit_helper",
    "edit_leaf_input",
    "expected_runs",
    "generate_cpu_pivot",
    "generate_dvc",
    "generate_pivot",
    "helper_path",
    "leaf_input_to_edit",
    "plain_script",
    "run_dvc_stages_directly",
    "stage_module",
]

GROUP = 10
STAGES_PER_MODULE = 1000
HELPER_TO_EDIT = 5  # fan-out stages: their output feeds only k=8, which does not re-run
_ARG_NAMES = "abcd"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@pivot.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@pivot.invalid",
}


@dataclasses.dataclass(frozen=True)
class StageShape:
    """One generated stage: its name, helper module index, input paths and output path."""

    name: str
    helper: int
    inputs: tuple[str, ...]
    output: str


def _stage_name(index: int) -> str:
    return f"s{index:04d}"


def _output(index: int) -> str:
    return f"out/{_stage_name(index)}.txt"


def _leaf_input(group: int) -> str:
    return f"data/in_{group:03d}.txt"


def _inputs(index: int) -> tuple[str, ...]:
    base, k = index - index % GROUP, index % GROUP
    if k == 0:
        return (_leaf_input(index // GROUP),)
    if k in (1, 2, 3):
        return (_output(index - 1),)
    if k in (4, 5, 6, 7):
        return (_output(base + 3),)
    if k == 8:
        return tuple(_output(base + j) for j in (4, 5, 6, 7))
    previous = (_output(base - 2),) if base else ()
    return (_output(base + 8), *previous)


def build_shape(n: int) -> list[StageShape]:
    """The N stages in topological order."""
    if n < 1:
        raise ValueError(f"the number of stages must be at least 1, got {n}")
    return [StageShape(_stage_name(i), i % GROUP, _inputs(i), _output(i)) for i in range(n)]


def leaf_input_to_edit(n: int) -> str:
    """The leaf input of the last group: editing it re-runs at most ten stages."""
    return _leaf_input((n - 1) // GROUP)


def _downstream(shape: Sequence[StageShape], changed: set[str]) -> int:
    """How many stages read, directly or not, one of the `changed` paths."""
    count = 0
    for stage in shape:  # topological order
        if changed.intersection(stage.inputs):
            changed.add(stage.output)
            count += 1
    return count


def expected_runs(op: str, n: int) -> int:
    """How many stages a correct tool runs for operation `op` on a fresh N-stage project."""
    shape = build_shape(n)
    if op == "full":
        return n
    if op == "leaf":
        return _downstream(shape, {leaf_input_to_edit(n)})
    if op == "helper":
        return sum(1 for stage in shape if stage.helper == HELPER_TO_EDIT)
    if op == "plain":
        return n  # the baseline rewrites every output
    return 0


def helper_path(index: int) -> str:
    return f"helpers/h{index}.py"


# --- shared files ---------------------------------------------------------------------------

_HELPER = '''"""Helper {index}: used by every stage at position {index} of its group."""

import hashlib


def transform(name: str, *texts: str) -> str:
    revision = 0  # bumped by the benchmark's helper edit; does not change the output
    body = "".join(texts)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return f"{{name}} h{index} {{digest}} {{len(body) + 0 * revision}}\\n"
'''


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _write_shared(root: Path, shape: Sequence[StageShape]) -> None:
    groups = (len(shape) + GROUP - 1) // GROUP
    for group in range(groups):
        _write(root / _leaf_input(group), f"leaf input {group}\n" * 4)
    _write(root / "helpers" / "__init__.py", "")
    for index in range(GROUP):
        _write(root / helper_path(index), _HELPER.format(index=index))


def edit_leaf_input(root: Path, n: int, serial: int) -> Path:
    """Append a line to the leaf input the leaf-edit operation changes."""
    path = root / leaf_input_to_edit(n)
    with path.open("a") as handle:
        handle.write(f"edit {serial}\n")
    return path


def edit_helper(root: Path, serial: int) -> Path:
    """Change the code, not the output, of the helper used by a tenth of the stages."""
    path = root / helper_path(HELPER_TO_EDIT)
    text, count = re.subn(r"revision = \d+", f"revision = {serial}", path.read_text())
    if count != 1:
        raise RuntimeError(f"{path} has no 'revision = <int>' line to edit")
    path.write_text(text)
    return path


# --- Pivot ----------------------------------------------------------------------------------


def _pivot_stage(stage: StageShape) -> str:
    params = ",\n".join(
        f'    {_ARG_NAMES[j]}: Annotated[str, Dep("{path}", Text())]'
        for j, path in enumerate(stage.inputs)
    )
    args = ", ".join(_ARG_NAMES[: len(stage.inputs)])
    return (
        f"def {stage.name}(\n{params},\n"
        f') -> Annotated[str, Out("{stage.output}", Text())]:\n'
        f'    return h{stage.helper}.transform("{stage.name}", {args})\n'
    )


def stage_module(index: int) -> str:
    """The module defining stage `index`: `stages`, then `stages_001`, ... (1000 stages each)."""
    part = index // STAGES_PER_MODULE
    return "stages" if part == 0 else f"stages_{part:03d}"


def _pivot_stages_module(shape: Sequence[StageShape]) -> str:
    helpers = sorted({stage.helper for stage in shape})
    header = [
        '"""Generated benchmark stages."""',
        "",
        "from typing import Annotated",
        "",
        f"from helpers import {', '.join(f'h{i}' for i in helpers)}",
        "from pivot.loaders import Text",
        "from pivot.outputs import Dep, Out",
        "",
    ]
    bodies = [_pivot_stage(stage) for stage in shape]
    return "\n".join(header) + "\n\n" + "\n\n".join(bodies)


def _pivot_pipeline_module(shape: Sequence[StageShape]) -> str:
    modules = list(dict.fromkeys(stage_module(i) for i in range(len(shape))))
    lines = [
        '"""Generated benchmark pipeline."""',
        "",
        *(f"import {module}" for module in modules),
        "from pivot import Pipeline",
        "",
        'pipeline = Pipeline("bench")',
    ]
    lines += [
        f'pipeline.register({stage_module(i)}.{s.name}, name="{s.name}")'
        for i, s in enumerate(shape)
    ]
    return "\n".join(lines) + "\n"


def generate_pivot(
    root: Path, n: int, pivot_cmd: Sequence[str], env: Mapping[str, str] | None = None
) -> None:
    """Write a Pivot project of N stages in `root` (created), `pivot init` it and commit."""
    shape = build_shape(n)
    root.mkdir(parents=True)
    _write_shared(root, shape)
    for start in range(0, n, STAGES_PER_MODULE):
        part = shape[start : start + STAGES_PER_MODULE]
        _write(root / f"{stage_module(start)}.py", _pivot_stages_module(part))
    _write(root / "pipeline.py", _pivot_pipeline_module(shape))
    _init_project(root, pivot_cmd, env)


def _init_project(root: Path, pivot_cmd: Sequence[str], env: Mapping[str, str] | None) -> None:
    _git_init(root)
    _run([*pivot_cmd, "init"], root, env)
    _git_commit(root)


_PLAIN = """\"\"\"The baseline: every stage's work in one plain Python process, no tool.\"\"\"

import importlib, json, os, sys
sys.path.insert(0, os.getcwd())
for module, name, output, inputs in json.load(open(sys.argv[1])):
    texts = []
    for path in inputs:
        with open(path) as handle:
            texts.append(handle.read())
    result = getattr(importlib.import_module(module), name)(*texts)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as handle:
        handle.write(result)
"""


def plain_script(directory: Path, n: int) -> list[str]:
    """Write the baseline script and its call list for N stages in `directory`; returns the
    arguments to run it with (by a Python that can import Pivot, in the project's root)."""
    calls = [
        [stage_module(i), stage.name, stage.output, list(stage.inputs)]
        for i, stage in enumerate(build_shape(n))
    ]
    script, listing = directory / "plain_baseline.py", directory / f"plain_calls_{n}.json"
    _write(script, _PLAIN)
    _write(listing, json.dumps(calls))
    return [str(script), str(listing)]


# --- CPU-bound stages (for -j 2 against -j 1) -------------------------------------------------

_CPU_HELPER = '''"""Pure-Python CPU work of a fixed size (no I/O, holds the GIL)."""


def burn(text: str, iterations: int) -> str:
    value = len(text)
    for i in range(iterations):
        value = (value * 31 + i) % 1_000_003
    return f"{value}\\n"
'''


def cpu_iterations(seconds: float) -> int:
    """How many `burn` steps take about `seconds` of CPU in this interpreter (measured now)."""
    namespace: dict[str, Any] = {}
    exec(_CPU_HELPER, namespace)
    probe = 200_000
    started = time.process_time()
    namespace["burn"]("", probe)
    elapsed = max(time.process_time() - started, 1e-6)
    return max(1, int(probe * seconds / elapsed))


def _cpu_stage(index: int, iterations: int) -> str:
    return (
        f"def cpu{index:02d}(\n"
        f'    text: Annotated[str, Dep("data/cpu_{index:02d}.txt", Text())],\n'
        f') -> Annotated[str, Out("out/cpu_{index:02d}.txt", Text())]:\n'
        f"    return cpu.burn(text, {iterations})\n"
    )


def generate_cpu_pivot(
    root: Path,
    stages: int,
    iterations: int,
    pivot_cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> None:
    """A Pivot project of `stages` independent stages, each `iterations` steps of CPU work."""
    root.mkdir(parents=True)
    _write(root / "helpers" / "__init__.py", "")
    _write(root / "helpers" / "cpu.py", _CPU_HELPER)
    header = [
        '"""Generated CPU-bound benchmark stages."""',
        "",
        "from typing import Annotated",
        "",
        "from helpers import cpu",
        "from pivot.loaders import Text",
        "from pivot.outputs import Dep, Out",
        "",
    ]
    bodies = []
    for index in range(stages):
        _write(root / f"data/cpu_{index:02d}.txt", f"cpu input {index}\n")
        bodies.append(_cpu_stage(index, iterations))
    _write(root / "stages.py", "\n".join(header) + "\n\n" + "\n\n".join(bodies))
    registrations = [
        f'pipeline.register(stages.cpu{i:02d}, name="cpu{i:02d}")' for i in range(stages)
    ]
    pipeline = ["import stages", "from pivot import Pipeline", "", 'pipeline = Pipeline("cpu")']
    _write(root / "pipeline.py", "\n".join([*pipeline, *registrations]) + "\n")
    _init_project(root, pivot_cmd, env)


# --- DVC ------------------------------------------------------------------------------------

_DVC_SCRIPT = '''"""Run one generated benchmark stage: bench_stage.py NAME HELPER OUTPUT INPUT..."""

import importlib
import os
import sys


def main(name: str, helper: str, output: str, *inputs: str) -> None:
    texts = []
    for path in inputs:
        with open(path) as handle:
            texts.append(handle.read())
    result = importlib.import_module(f"helpers.h{helper}").transform(name, *texts)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as handle:
        handle.write(result)


if __name__ == "__main__":
    main(*sys.argv[1:])
'''


def _dvc_stage(stage: StageShape) -> str:
    command = shlex.join(
        ["python", "bench_stage.py", stage.name, str(stage.helper), stage.output, *stage.inputs]
    )
    deps = ["bench_stage.py", helper_path(stage.helper), *stage.inputs]
    lines = [f"  {stage.name}:", f"    cmd: {command}", "    deps:"]
    lines += [f"      - {dep}" for dep in deps]
    lines += ["    outs:", f"      - {stage.output}"]
    return "\n".join(lines)


def _dvc_yaml(shape: Sequence[StageShape]) -> str:
    return "stages:\n" + "\n".join(_dvc_stage(stage) for stage in shape) + "\n"


_RUN_ALL = """import json, sys
sys.path.insert(0, ".")
import bench_stage
for args in json.loads(sys.argv[1]):
    bench_stage.main(*args)
"""


def run_dvc_stages_directly(root: Path, n: int, python: str = "python") -> None:
    """Do every stage's work in one process, in order, without DVC (then `dvc commit` them)."""
    calls = [
        [stage.name, str(stage.helper), stage.output, *stage.inputs] for stage in build_shape(n)
    ]
    _run([python, "-c", _RUN_ALL, json.dumps(calls)], root)


def generate_dvc(
    root: Path, n: int, dvc_cmd: Sequence[str], env: Mapping[str, str] | None = None
) -> None:
    """Write the same N-stage project for DVC in `root` (created), `dvc init` it and commit."""
    shape = build_shape(n)
    root.mkdir(parents=True)
    _write_shared(root, shape)
    _write(root / "bench_stage.py", _DVC_SCRIPT)
    _write(root / "dvc.yaml", _dvc_yaml(shape))
    _git_init(root)
    _run([*dvc_cmd, "init", "-q"], root, env)
    _run([*dvc_cmd, "config", "core.analytics", "false"], root, env)
    _git_commit(root)


# --- git and processes ------------------------------------------------------------------------


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
    full_env = {**(os.environ if env is None else env), **_GIT_ENV}
    completed = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(argv)} failed in {cwd} with exit code {completed.returncode}:\n"
            f"{completed.stdout}{completed.stderr}"
        )


def _git_init(root: Path) -> None:
    _run(["git", "init", "-q", "-b", "main"], root)
    # no background `git gc --auto` after the big first commit: it would delete loose objects
    # while the harness copies the project
    _run(["git", "config", "gc.auto", "0"], root)


def _git_commit(root: Path) -> None:
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "generated benchmark project"], root)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write one benchmark project.")
    parser.add_argument("root", type=Path, help="directory to create")
    parser.add_argument("--n", type=int, default=10, help="number of stages")
    parser.add_argument("--tool", choices=("pivot", "dvc"), default="pivot")
    parser.add_argument("--cmd", default=None, help="the tool's command (default: on PATH)")
    args = parser.parse_args(argv)
    command = shlex.split(args.cmd) if args.cmd else [args.tool]
    if Path(command[0]).exists():
        command[0] = str(Path(command[0]).resolve())  # the tool runs in the new project
    generate = generate_pivot if args.tool == "pivot" else generate_dvc
    generate(args.root, args.n, command)
    print(f"wrote a {args.n}-stage {args.tool} project in {args.root}", file=sys.stderr)


if __name__ == "__main__":
    main()
