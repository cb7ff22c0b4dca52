#!/usr/bin/env bash
# `make demo`: run the example ML pipeline (examples/ml) in a scratch copy and show what Pivot does:
# a first run, a second run that has nothing to do, and a param change that re-runs only what it
# affects. The committed example is never touched. Needs `pivot` on PATH (the Makefile puts the
# venv's bin first). Set PIVOT_DEMO_DIR to run somewhere other than build/demo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
work="${PIVOT_DEMO_DIR:-$repo/build/demo}"
marker=".pivot-demo"

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "$*"; "$@"; }

found="$(command -v pivot)" || {
    echo "run_demo.sh: 'pivot' is not on PATH; run 'make demo' or 'pip install -e .[matplotlib]'" >&2
    exit 2
}
pivot_bin="$(cd "$(dirname "$found")" && pwd)/$(basename "$found")"  # still found after the cd below
pivot() { "$pivot_bin" "$@"; }
if [[ -e "$work" && ! -e "$work/$marker" ]]; then
    echo "run_demo.sh: $work exists and was not made by this script; remove it or set PIVOT_DEMO_DIR" >&2
    exit 2
fi

step "Fresh copy of examples/ml in $work"
rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -R "$here/ml" "$work"
rm -rf "$work/.pivot"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
touch "$work/$marker"
cd "$work"
git init -q
git config user.email "demo@pivot.invalid"
git config user.name "Pivot demo"
echo "$marker" >>.git/info/exclude

step "Create the project (.pivot/) and run the whole pipeline"
run pivot init
run pivot repro

step "Metrics"
for file in metrics/train.json metrics/eval.json; do
    echo "--- $file"
    cat "$file"
done

step "Outputs and lock files"
find data model metrics plots reports history .pivot/stages -type f | sort

step "Run again: every stage is up to date, nothing runs"
locks_before="$(cat .pivot/stages/*.lock | cksum)"
run pivot repro
if [[ "$(cat .pivot/stages/*.lock | cksum)" != "$locks_before" ]]; then
    echo "run_demo.sh: the second 'pivot repro' changed a lock file; expected nothing to run" >&2
    exit 1
fi
echo "(lock files unchanged; history/evaluations.jsonl has $(wc -l <history/evaluations.jsonl) entry)"

step "Commit the results, so later runs can be compared with them"
git add -A
git commit -qm "First run of the flowers pipeline"
git log --oneline -1

step "Change a param of 'train' (epochs 200 -> 400) and ask what is stale, and why"
sed -i.bak 's/params=TrainParams(epochs=200)/params=TrainParams(epochs=400)/' pipeline.py
rm -f pipeline.py.bak
grep -n "TrainParams(epochs=" pipeline.py
run pivot status --explain

step "Re-run: only train and evaluate run; clean and split are up to date"
run pivot repro
echo "--- metrics/train.json"
cat metrics/train.json
echo "--- history/evaluations.jsonl (one line per evaluate run)"
cat history/evaluations.jsonl

step "What changed since the commit: metrics and params (HEAD against the workspace)"
run pivot metrics diff
run pivot params diff

step "Change a helper that only 'evaluate' uses (mlkit/evaluation.py: scores rounded to 3 digits)"
sed -i.bak 's/round(numerator \/ denominator, 4)/round(numerator \/ denominator, 3)/' mlkit/evaluation.py
rm -f mlkit/evaluation.py.bak
grep -n "round(numerator" mlkit/evaluation.py
run pivot status --explain

run pivot repro

step "Every run is recorded: the history, and the last run in detail"
run pivot history
run pivot show

step "The report: one self-contained HTML page (DAG, why stages ran, params, metrics, plots)"
run pivot dag
pivot report
report="$work/.pivot/report/report.html"

step "Done"
echo "The demo project, its outputs and .pivot/ are in: $work"
echo "Plots: $work/plots/loss.png and $work/plots/confusion.png"
echo "Report (open it in a browser; it needs no network): $report"
