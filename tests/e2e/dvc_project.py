"""A realistic DVC project for the migration tests: 5 stage definitions (8 stages once foreach and
matrix expand), params.yaml keys and sections, vars, wdir, a directory output, metrics.

Its scripts use only the standard library, so the same interpreter runs them under DVC and
Pivot; their outputs are deterministic, so the two tools' results can be compared byte for byte.
"""

from __future__ import annotations

import textwrap

__all__ = ["FILES", "OUTPUTS"]

_RAW = "id,region,x,y\n" + "".join(
    f"{i},{('north', 'south', 'east')[i % 3]},{i * 0.5:.1f},{(i * 7) % 11 + i * 0.25:.2f}\n"
    for i in range(60)
)

FILES: dict[str, str] = {
    "data/raw.csv": _RAW,
    "eval/README.md": "The evaluate stage runs here (wdir: eval).\n",
    "params.yaml": textwrap.dedent(
        """\
        prepare:
          split: 0.25
          seed: 7
        featurize:
          scale: 2.0
          offset: 1
        train:
          epochs: 4
          lr: 0.05
        regions: [north, south, east]
        """
    ),
    "src/prepare.py": textwrap.dedent(
        """\
        import csv, os, random, sys
        import yaml

        params = yaml.safe_load(open("params.yaml"))["prepare"]
        rows = list(csv.DictReader(open(sys.argv[1])))
        random.Random(params["seed"]).shuffle(rows)
        cut = int(len(rows) * params["split"])
        os.makedirs(sys.argv[2], exist_ok=True)
        for name, part in (("test.csv", rows[:cut]), ("train.csv", rows[cut:])):
            with open(os.path.join(sys.argv[2], name), "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(sorted(part, key=lambda row: int(row["id"])))
        """
    ),
    "src/featurize.py": textwrap.dedent(
        """\
        import csv, json, sys
        import yaml

        params = yaml.safe_load(open("params.yaml"))["featurize"]
        rows = list(csv.DictReader(open(sys.argv[1] + "/train.csv")))
        features = [
            {"id": int(r["id"]), "f": float(r["x"]) * params["scale"] + params["offset"],
             "y": float(r["y"])}
            for r in rows
        ]
        json.dump(features, open(sys.argv[2], "w"), indent=1, sort_keys=True)
        """
    ),
    "src/region.py": textwrap.dedent(
        """\
        import csv, os, sys

        region, source, target = sys.argv[1:4]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        rows = [r for r in csv.DictReader(open(source)) if r["region"] == region]
        with open(target, "w") as handle:
            handle.write(f"{region}: {len(rows)} rows, sum y {sum(float(r['y']) for r in rows):.2f}\\n")
        """
    ),
    "src/train.py": textwrap.dedent(
        """\
        import json, sys

        epochs, lr = int(sys.argv[1]), float(sys.argv[2])
        features = json.load(open("data/features.json"))
        w = 0.0
        for _ in range(epochs):
            for row in features:
                w += lr * (row["y"] - w * row["f"]) * row["f"] / 100
        json.dump({"w": round(w, 10), "epochs": epochs}, open("model.json", "w"), sort_keys=True)
        """
    ),
    "src/evaluate.py": textwrap.dedent(
        """\
        import csv, json, sys

        model = json.load(open(sys.argv[1]))
        rows = list(csv.DictReader(open(sys.argv[2])))
        errors = [abs(float(r["y"]) - model["w"] * float(r["x"])) for r in rows]
        mae = sum(errors) / len(errors)
        rmse = (sum(e * e for e in errors) / len(errors)) ** 0.5
        json.dump({"mae": round(mae, 6), "rmse": round(rmse, 6)}, open(sys.argv[3], "w"), sort_keys=True)
        """
    ),
    "src/report.py": textwrap.dedent(
        """\
        import json, os, sys

        metric, style, source, target = sys.argv[1:5]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        value = json.load(open(source))[metric]
        line = f"# {metric}\\n\\n{value}\\n" if style == "md" else f"{metric}={value}\\n"
        open(target, "w").write(line)
        """
    ),
    "dvc.yaml": textwrap.dedent(
        """\
        vars:
          - report_dir: reports
        stages:
          prepare:
            cmd: python src/prepare.py data/raw.csv data/prepared
            deps: [src/prepare.py, data/raw.csv]
            params: [prepare.split, prepare.seed]
            outs: [data/prepared]
          featurize:
            cmd: python src/featurize.py data/prepared data/features.json
            deps: [src/featurize.py, data/prepared]
            params: [featurize]
            outs: [data/features.json]
          region:
            foreach: ${regions}
            do:
              cmd: python src/region.py ${item} data/prepared/train.csv data/regions/${item}.txt
              deps: [src/region.py, data/prepared/train.csv]
              outs: ["data/regions/${item}.txt"]
          train:
            cmd: python src/train.py ${train.epochs} ${train.lr}
            deps: [src/train.py, data/features.json]
            params: [train.epochs, train.lr]
            outs: [model.json]
          evaluate:
            wdir: eval
            cmd: python ../src/evaluate.py ../model.json ../data/prepared/test.csv scores.json
            deps: [../src/evaluate.py, ../model.json, ../data/prepared/test.csv]
            metrics:
              - scores.json:
                  cache: false
          report:
            matrix:
              metric: [mae, rmse]
              style: [txt, md]
            cmd: python src/report.py ${item.metric} ${item.style} eval/scores.json ${report_dir}/${item.metric}.${item.style}
            deps: [src/report.py, eval/scores.json]
            outs: ["reports/${item.metric}.${item.style}"]
        """
    ),
}

OUTPUTS = (
    "data/prepared/train.csv",
    "data/prepared/test.csv",
    "data/features.json",
    "data/regions/north.txt",
    "data/regions/south.txt",
    "data/regions/east.txt",
    "model.json",
    "eval/scores.json",
    "reports/mae.txt",
    "reports/mae.md",
    "reports/rmse.txt",
    "reports/rmse.md",
)
