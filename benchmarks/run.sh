#!/usr/bin/env bash
# `make bench`: make the DVC venv if missing (DVC is never a project dependency), then run the
# harness with the project's interpreter. Extra arguments go to the harness, e.g.
#   bash benchmarks/run.sh --sizes 10,200 --repeats 3 --no-hashing
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
DVC_VENV=benchmarks/.venv-dvc
DVC_ARGS=()
LOG=benchmarks/results/dvc-install.log

if [ ! -x "$DVC_VENV/bin/dvc" ]; then
    mkdir -p benchmarks/results
    echo "run.sh: creating $DVC_VENV with 'pip install dvc' (log: $LOG)" >&2
    if ! { python3 -m venv "$DVC_VENV" \
            && "$DVC_VENV/bin/python" -m pip install -q --upgrade pip \
            && "$DVC_VENV/bin/python" -m pip install -q dvc py-spy; } >"$LOG" 2>&1; then
        echo "run.sh: could not install DVC (see $LOG); benchmarking Pivot only" >&2
        rm -rf "$DVC_VENV"
        DVC_ARGS=(--no-dvc)
    fi
fi

if [ ! -x "$PYTHON" ]; then
    echo "run.sh: $PYTHON not found; run 'make demo' or 'make unit' first to create .venv" >&2
    exit 2
fi

# DVC's full repro of 1000 stages is quadratic (about an hour here): at N=1000 its reproduced
# state is made by running the stage work directly + `dvc commit`, and one repeat is enough.
exec "$PYTHON" benchmarks/harness.py --sizes 10,200,1000 --repeats 3 \
    --dvc-repeats 1000:1 --dvc-commit-sizes 1000 \
    "${DVC_ARGS[@]}" "$@"
