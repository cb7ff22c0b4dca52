"""Every code example of the three seed documents registers unchanged, extracts the right specs,
stays a plain function, and (run here with a tiny in-test loop over its loaders) works.

The examples live as faithful copies in tests/fixtures/seed_*.py, each noting what it fills in.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import pkgutil
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import tests.fixtures
from pivot import errors
from pivot.loaders import (
    CSV,
    JSON,
    YAML,
    MatplotlibFigure,
    PathOnly,
    Pickle,
    Text,
)
from pivot.pipeline import Pipeline
from pivot.returns import expand_return_value
from pivot.spec import Shape, StageSpec
from tests.fixtures import seed_000_nested, seed_000_test_stages
from tests.fixtures.seeds_data import write_seed_inputs

SEED_MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(tests.fixtures.__path__)
    if info.name.startswith("seed_")
)


def _module(name: str) -> Any:
    return importlib.import_module(f"tests.fixtures.{name}")


def _pipelines(module: Any) -> dict[str, Pipeline]:
    return {name: value for name, value in vars(module).items() if isinstance(value, Pipeline)}


# --- expected specs: deps name -> (paths, shape, loader, incremental); outs name -> (paths,
# kind, cache, loader). Keyed by "module:pipeline variable".
_csv, _json = CSV(), JSON()
_no_deps: dict[str, Any] = {}


def _dep(*paths: str, loader: Any = _csv, shape: str = "single", inc: bool = False) -> Any:
    return (paths, shape, loader, inc)


def _out(*paths: str, kind: str = "out", cache: bool = True, loader: Any = _csv) -> Any:
    return (paths, kind, cache, loader)


def _metric(path: str) -> Any:
    return _out(path, kind="metric", cache=False, loader=_json)


_TRAIN_002 = {
    "deps": {"data": _dep("features.csv")},
    "outs": {"predictions": _out("predictions.csv"), "metrics": _metric("metrics.json")},
}
_ANATOMY = {
    "deps": {"data": _dep("input.csv")},
    "outs": {"result": _out("output.csv"), "metrics": _metric("metrics.json")},
}
_COMPOSED = {
    "clean": {"deps": {"raw": _dep("data/raw.csv")}, "outs": {"return": _out("data/clean.csv")}},
    "normalize": {
        "deps": {"clean": _dep("data/clean.csv")},
        "outs": {"return": _out("data/normalized.csv")},
    },
}
_PARAMS_SUMMARY = {
    "summarize": {"deps": _no_deps, "outs": {"return": _metric("params_summary.json")}}
}

EXPECTED: dict[str, dict[str, Any]] = {
    "seed_000_nested:pipeline": {},
    "seed_000_test_stages:pipeline": {
        "_test_stage": {"deps": _no_deps, "outs": {"result": _out("result.txt", loader=Text())}}
    },
    "seed_000_train:pipeline": {
        "train": {
            "deps": {"data": _dep("data.csv")},
            "outs": {
                "model": _out("model.pkl", loader=Pickle()),
                "metrics": _out("metrics.json", loader=_json),
            },
        }
    },
    "seed_001_anatomy:pipeline": {"my_stage": _ANATOMY},
    "seed_001_single_output:pipeline": {
        "transform": {"deps": {"data": _dep("input.csv")}, "outs": {"return": _out("output.csv")}}
    },
    "seed_001_multi_file:pipeline": {
        "combine": {
            "deps": {
                "shards": _dep("a.csv", "b.csv", shape="list"),
                "pair": _dep("x.csv", "y.csv", shape="tuple"),
            },
            "outs": {"return": _out("combined.csv")},
        }
    },
    "seed_001_incremental:pipeline": {
        "incremental_stage": {
            "deps": {"cache": _dep("cache.json", loader=_json, inc=True)},
            "outs": {"cache": _out("cache.json", kind="incremental", loader=_json)},
        }
    },
    "seed_001_directory:pipeline": {
        "process_tasks": {
            "deps": _no_deps,
            "outs": {"results": _out("results/", kind="directory", loader=_json)},
        }
    },
    "seed_001_placeholder:pipeline": {
        "compare": {
            "deps": {"baseline": _dep("model_a/results.csv")},
            "outs": {"summary": _metric("compare/summary.json")},
        }
    },
    "seed_001_plot:pipeline": {
        "make_plot": {
            "deps": {"data": _dep("input.csv")},
            "outs": {
                "plot": _out("plots/my_plot.png", kind="plot", loader=MatplotlibFigure(dpi=150))
            },
        }
    },
    "seed_001_overrides:pipeline": {
        "my_stage@v2": {
            "deps": {"data": _dep("input.csv")},
            "outs": {"result": _out("v2/output.csv"), "metrics": _metric("metrics.json")},
        }
    },
    "seed_001_custom_loaders:pipeline": {
        "describe_image": {
            "deps": {"image": _dep("images/photo.png", loader="ImageReader")},
            "outs": {"return": _out("report.html", loader="HTMLWriter")},
        },
        "accumulate": {
            "deps": {"embeddings": _dep("embeddings.npy", loader="NPY", inc=True)},
            "outs": {"embeddings": _out("embeddings.npy", kind="incremental", loader="NPY")},
        },
    },
    "seed_001_params_wrong:pipeline": _PARAMS_SUMMARY,
    "seed_001_params_correct:pipeline": _PARAMS_SUMMARY,
    "seed_001_composition:preprocessing": _COMPOSED,
    "seed_001_composition:main": {
        **_COMPOSED,
        "train": {
            "deps": {"data": _dep("data/normalized.csv")},
            "outs": {
                "model": _out("model.pkl", loader=Pickle()),
                "metrics": _metric("train_metrics.json"),
            },
        },
    },
    "seed_002_train:pipeline": {"train": _TRAIN_002},
    "seed_002_clean:pipeline": {
        "clean": {"deps": {"raw": _dep("raw.csv")}, "outs": {"return": _out("clean.csv")}}
    },
    "seed_002_results:pipeline": {
        "summarize": {
            "deps": {"raw": _dep("raw.csv")},
            "outs": {
                "report": _out("report.json", loader=_json),
                "data": _out("processed.csv"),
            },
        }
    },
    "seed_002_shards:pipeline": {
        "split": {
            "deps": {"records": _dep("records.json", loader=_json)},
            "outs": {"shards": _out("shard_a.json", "shard_b.json", loader=_json)},
        }
    },
    "seed_002_plot:pipeline": {
        "train": {
            "deps": {"history": _dep("history.json", loader=_json)},
            "outs": {
                "loss_curve": _out("plots/loss.png", kind="plot", loader=MatplotlibFigure()),
                "roc_plot": _out("plots/roc.png", kind="plot", loader=PathOnly()),
            },
        }
    },
    "seed_002_incremental:pipeline": {
        "update_cache": {
            "deps": {
                "cache": _dep("cache.json", loader=_json, inc=True),
                "new_data": _dep("new_data.csv"),
            },
            "outs": {"cache": _out("cache.json", kind="incremental", loader=_json)},
        }
    },
    "seed_002_directory:pipeline": {
        "process_tasks": {
            "deps": _no_deps,
            "outs": {"results": _out("metrics/tasks/", kind="directory", loader=YAML())},
        }
    },
    "seed_002_overrides:pipeline": {
        "train": {
            "deps": {"data": _dep("features.csv")},
            "outs": {
                "predictions": _out("v2/predictions.csv"),
                "metrics": _metric("metrics.json"),
            },
        },
        "clean": {"deps": {"raw": _dep("raw.csv")}, "outs": {"return": _out("v2/clean.csv")}},
    },
    "seed_002_overrides:pipeline_with_options": {
        "train": {
            "deps": {"data": _dep("features.csv")},
            "outs": {
                "predictions": _out("v2/predictions.csv", cache=False),
                "metrics": _metric("metrics.json"),
            },
        }
    },
}


def _loader_key(loader: Any, expected: Any) -> Any:
    """Custom seed loaders are named by class (each module defines its own class object)."""
    return type(loader).__name__ if isinstance(expected, str) else loader


def _summary(spec: StageSpec, expected: dict[str, Any]) -> dict[str, Any]:
    deps = {
        dep.name: (
            dep.paths,
            dep.shape.value,
            _loader_key(dep.loader, expected["deps"].get(dep.name, (0, 0, 0))[2]),
            dep.incremental,
        )
        for dep in spec.deps
    }
    outs = {
        out.name: (
            out.paths,
            out.kind.value,
            out.cache,
            _loader_key(out.loader, expected["outs"].get(out.name, (0, 0, 0, 0))[3]),
        )
        for out in spec.outs
    }
    return {"deps": deps, "outs": outs}


def test_every_seed_module_is_covered() -> None:
    assert {key.split(":")[0] for key in EXPECTED} == set(SEED_MODULES)
    for name in SEED_MODULES:
        assert "pipeline" in _pipelines(_module(name)), f"{name} binds no `pipeline`"


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_seed_pipelines_extract_the_documented_specs(key: str) -> None:
    module_name, variable = key.split(":")
    pipeline = _pipelines(_module(module_name))[variable]
    expected = EXPECTED[key]
    assert list(pipeline.stages) == list(expected)
    for name, spec in pipeline.stages.items():
        assert _summary(spec, expected[name]) == expected[name], name


# --- seed 000 -----------------------------------------------------------------------------------


def test_seed_000_nested_typed_dict_and_stage_fail_at_registration(tmp_path: pathlib.Path) -> None:
    """The seed's wording: "Failed to resolve type hints for train: name 'TrainOutputs' is not
    defined", then the fix."""
    pipeline = Pipeline("nested", root=tmp_path)
    with pytest.raises(errors.TypeHintError) as info:
        seed_000_nested.create_pipeline(pipeline)
    message = str(info.value)
    assert (
        "stage 'train': Failed to resolve type hints for train: name 'TrainOutputs' is not "
        "defined" in message
    )
    assert "local to create_pipeline()" in message
    assert message.index("is not defined") < message.index("Define the TypedDict")
    assert "at module level" in message


def test_seed_000_closure_fails_at_registration(tmp_path: pathlib.Path) -> None:
    pipeline = Pipeline("closure", root=tmp_path)
    with pytest.raises(
        errors.NotModuleLevelError, match=r"create_pipeline_closure\.<locals>\.train"
    ):
        seed_000_nested.create_pipeline_closure(pipeline)
    assert len(pipeline) == 0
    assert len(seed_000_nested.pipeline) == 0


def test_seed_000_test_stage_execution() -> None:
    """Seed 000's `test_stage_execution`, verbatim but for the import it needs."""
    from pivot import fingerprint

    _test_stage = seed_000_test_stages._test_stage

    # Use the module-level definitions in tests
    manifest = fingerprint.get_stage_fingerprint(_test_stage)
    assert "result.txt" in str(manifest)


# --- seed 001 "Testing": stages are plain functions ----------------------------------------------


def test_my_stage() -> None:
    """Seed 001's "Testing" example, verbatim."""
    from tests.fixtures.seed_001_anatomy import MyParams, my_stage

    result = my_stage(
        params=MyParams(threshold=0.5),
        data=pd.DataFrame({"score": [0.3, 0.7, 0.9]}),
    )
    assert len(result["result"]) == 2


def test_other_seed_stages_called_directly() -> None:
    from tests.fixtures import (
        seed_001_incremental,
        seed_001_multi_file,
        seed_002_clean,
        seed_002_directory,
        seed_002_train,
    )

    frame = pd.DataFrame({"a": [1.0, None, 3.0]})
    assert len(seed_002_clean.clean(raw=frame)) == 2
    assert seed_001_incremental.incremental_stage(cache=None) == {"cache": {"new_key": "value"}}
    combined = seed_001_multi_file.combine(shards=[frame, frame], pair=(frame, frame))
    assert len(combined) == 12
    assert seed_002_train.train(data=frame)["metrics"] == {"accuracy": 0.95, "f1": 0.91}
    assert set(seed_002_directory.process_tasks()["results"]) == {"task_a.yaml", "task_b.yaml"}


def test_seed_params_wrong_and_correct_behave_the_same() -> None:
    from tests.fixtures import seed_001_params_correct, seed_001_params_wrong

    for module in (seed_001_params_wrong, seed_001_params_correct):
        first, second = module.MyParams(), module.MyParams()
        first.exclude.append("x")
        first.styling["k"] = 1
        first.percents.append(1)
        first.plots.colors.append("C1")
        assert second.model_dump() == {
            "exclude": [],
            "styling": {},
            "percents": [50, 80],
            "plots": {"dpi": 100, "colors": ["C0"]},
        }


def test_seed_composition_keeps_state_dir_and_copies() -> None:
    from tests.fixtures import seed_001_composition as composition

    included = composition.main.stages["clean"]
    assert included == composition.preprocessing.stages["clean"]
    assert included is not composition.preprocessing.stages["clean"]
    assert included.state_dir == composition.preprocessing.state_dir
    assert composition.pipeline is composition.main


# --- running every seed pipeline with real files (a tiny loop, not the engine) ---------------------


def _load_inputs(spec: StageSpec, root: pathlib.Path) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if spec.params_arg is not None:
        kwargs[spec.params_arg] = spec.params
    for dep in spec.deps:
        paths = [root / path for path in dep.paths]
        if dep.incremental:
            loader: Any = dep.loader
            kwargs[dep.name] = loader.load(paths[0]) if paths[0].exists() else loader.empty()
        elif dep.shape is Shape.SINGLE:
            kwargs[dep.name] = dep.loader.load(paths[0])
        else:
            values = [dep.loader.load(path) for path in paths]
            kwargs[dep.name] = tuple(values) if dep.shape is Shape.TUPLE else values
    return kwargs


def _run(pipeline: Pipeline, root: pathlib.Path) -> None:
    for spec in pipeline:
        result = spec.func(**_load_inputs(spec, root))
        for write in expand_return_value(spec, result):
            target = root / write.path
            target.parent.mkdir(parents=True, exist_ok=True)
            write.out.loader.save(write.value, target)


def _outputs(spec: StageSpec) -> list[str]:
    return [path for path in spec.out_paths if not path.endswith("/")]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_seed_pipelines_run_with_their_loaders(
    key: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_name, variable = key.split(":")
    pipeline = _pipelines(_module(module_name))[variable]
    write_seed_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)  # stages run with the project root as working directory
    figures_before = set(plt.get_fignums())
    _run(pipeline, tmp_path)
    for spec in pipeline:
        for path in _outputs(spec):
            assert (tmp_path / path).is_file(), f"{spec.name} did not produce {path}"
    assert set(plt.get_fignums()) == figures_before  # MatplotlibFigure closed what it saved


def test_seed_outputs_have_the_documented_content(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures import (
        seed_001_anatomy,
        seed_001_custom_loaders,
        seed_001_directory,
        seed_001_incremental,
        seed_002_directory,
        seed_002_plot,
        seed_002_shards,
    )

    write_seed_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    _run(seed_001_anatomy.pipeline, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"count": 2}  # threshold=0.3
    assert len(pd.read_csv(tmp_path / "output.csv")) == 2

    _run(seed_001_directory.pipeline, tmp_path)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "task_a.json",
        "task_b.json",
    ]
    _run(seed_002_directory.pipeline, tmp_path)
    assert YAML().load(tmp_path / "metrics/tasks/task_b.yaml") == {"accuracy": 0.87, "loss": 0.31}

    _run(seed_002_shards.pipeline, tmp_path)
    assert JSON().load(tmp_path / "shard_a.json") == {"records": [{"id": 1}]}

    _run(seed_002_plot.pipeline, tmp_path)
    assert (tmp_path / "plots/loss.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "plots/roc.png").read_bytes().startswith(b"\x89PNG")

    for _ in range(2):  # IncrementalOut: the second run starts from the first run's output
        _run(seed_001_incremental.pipeline, tmp_path)
        _run(seed_001_custom_loaders.pipeline, tmp_path)
    assert JSON().load(tmp_path / "cache.json") == {"new_key": "value"}
    assert np.load(tmp_path / "embeddings.npy").tolist() == [0.0, 1.0]
    assert "shape: (4, 6, 4)" in (tmp_path / "report.html").read_text()
