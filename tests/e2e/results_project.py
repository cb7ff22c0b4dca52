"""A project with history for the results tests: three commits in which a metric, a param and a
plot change, then an uncommitted workspace run in which a stage fails.

    c0  data only (no pivot run: no locks)        c1  lr=0.1, epochs=3
    c2  lr=0.2 (metrics and plots change)         c3  epochs=5 (loss curve longer)
    workspace: lr=0.3, strict audit -> `audit` fails
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import E2EProject, git, make_git_project

__all__ = ["PIPELINE", "build", "set_params"]

PIPELINE = """
# pandas and matplotlib are imported inside the stages, so loading this pipeline stays quick.


class TrainParams(StageParams):
    lr: float = 0.1
    epochs: int = 3


class AuditParams(StageParams):
    strict: bool = False


class TrainOutputs(TypedDict):
    metrics: Annotated[dict, Metric("metrics/train.json")]
    curve: Annotated[Any, Plot("plots/loss.csv", loaders.CSV(), x="epoch", y="loss")]
    figure: Annotated[Any, Plot("plots/loss.png", loaders.MatplotlibFigure(dpi=40))]


def prepare(raw: Annotated[str, Dep("data/raw.csv", loaders.Text())]) -> Annotated[str, Out("data/clean.csv", loaders.Text())]:
    return raw.strip() + "\\n"


def train(params: TrainParams, clean: Annotated[str, Dep("data/clean.csv", loaders.Text())]) -> TrainOutputs:
    import pandas as pd
    from matplotlib.figure import Figure

    losses = [round(1.0 / (1 + params.lr * 10 * (epoch + 1)), 4) for epoch in range(params.epochs)]
    figure = Figure(figsize=(4, 3))
    figure.add_subplot().plot(range(1, params.epochs + 1), losses)
    rows = len(clean.splitlines()) - 1
    return {
        "metrics": {"loss": losses[-1], "scores": {"accuracy": round(1 - losses[-1], 4)}, "rows": rows},
        "curve": pd.DataFrame({"epoch": range(1, params.epochs + 1), "loss": losses}),
        "figure": figure,
    }


def audit(params: AuditParams, metrics: Annotated[dict, Dep("metrics/train.json", loaders.JSON())]) -> Annotated[dict, Out("audit.json", loaders.JSON())]:
    if params.strict and metrics["scores"]["accuracy"] < 0.99:
        raise ValueError(f"accuracy {metrics['scores']['accuracy']} is below 0.99")
    return {"checked": True}


pipeline = Pipeline("results")
pipeline.register(prepare)
pipeline.register(train, params=TrainParams(lr=LR, epochs=EPOCHS))
pipeline.register(audit, params=AuditParams(strict=STRICT))
"""


def set_params(project: E2EProject, *, lr: float, epochs: int, strict: bool = False) -> None:
    body = PIPELINE.replace("LR", repr(lr)).replace("EPOCHS", repr(epochs))
    project.pipeline(body.replace("STRICT", repr(strict)))


def _commit(project: E2EProject, message: str) -> None:
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "-m", message)


def build(directory: Path) -> E2EProject:
    """Make the project described above in `directory` (about 10 s: five `pivot repro`)."""
    project = make_git_project(directory)
    project.gen({"data/raw.csv": "x,y\n1,2\n3,4\n5,6\n"})
    set_params(project, lr=0.1, epochs=3)
    _commit(project, "c0: data and pipeline")
    project.pivot("repro")
    _commit(project, "c1: first run")
    set_params(project, lr=0.2, epochs=3)
    project.pivot("repro")
    _commit(project, "c2: lr 0.2")
    set_params(project, lr=0.2, epochs=5)
    project.pivot("repro")
    _commit(project, "c3: 5 epochs")
    set_params(project, lr=0.3, epochs=5, strict=True)
    project.pivot("repro", expect=1)
    return project
