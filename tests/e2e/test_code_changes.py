"""End to end: every edit to a realistic project's code re-runs exactly the stages it can affect.

One multi-module project (a package with sub-packages, helpers of helpers, constants, a
dispatch table, partials, decorators, methods, a custom loader, params; 10 stages in a DAG) is
built and run once per worker. Each case copies that finished project, applies one edit, runs
the real `pivot repro --json` and compares the stages that ran with the expected set:
behaviour edits re-run the stages whose code can change and the downstream stages whose inputs
then changed (a re-run stage whose output comes out byte-identical cuts its downstream off);
cosmetic edits re-run nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

FILES = {
    "data/raw.txt": """\
The Æsir of the north sailed a long way west
Café owners open early and the coffee is strong
An ox and a cow graze in the øresund meadow
""",
    "pipeline.py": """
        # The pipeline of the text lab project.
        from pivot.pipeline import Pipeline

        from stages import features, modeling, prepare, reporting

        pipeline = Pipeline("textlab")
        pipeline.register(prepare.clean)
        pipeline.register(prepare.tokens)
        pipeline.register(prepare.lengths)
        pipeline.register(features.counts)
        pipeline.register(features.scores, params=features.ScoreParams(scorer="length"))
        pipeline.register(features.vocab)
        pipeline.register(modeling.train)
        pipeline.register(modeling.predict)
        pipeline.register(reporting.report)
        pipeline.register(reporting.summary)
    """,
    "stages/__init__.py": "",
    "stages/prepare.py": '''
        """Stages that prepare the text."""
        import statistics
        from math import floor
        from typing import Annotated

        from pivot import loaders
        from pivot.outputs import Dep, Out

        import textlab.cleaning
        from textlab import config
        from textlab.loaders import Lines


        def clean(raw: Annotated[str, Dep("data/raw.txt", loaders.Text())]) -> Annotated[list, Out("work/clean.txt", Lines())]:
            return [textlab.cleaning.normalize(line) for line in raw.splitlines() if line.strip()]


        def tokens(lines: Annotated[list, Dep("work/clean.txt", Lines())]) -> Annotated[list, Out("work/tokens.json", loaders.JSON())]:
            from textlab.cleaning.normalize import split_words

            return [word for line in lines for word in split_words(line)]


        def lengths(raw: Annotated[str, Dep("data/raw.txt", loaders.Text())]) -> Annotated[dict, Out("work/lengths.json", loaders.JSON())]:
            sizes = [len(line) for line in raw.splitlines()]
            return {"longest": min(max(sizes), config.MAX_LEN), "lines": len(sizes), "mean": floor(statistics.mean(sizes) / 3)}
    ''',
    "stages/features.py": '''
        """Stages that turn words into features."""
        from typing import Annotated

        from pivot import loaders
        from pivot.outputs import Dep, Out
        from pivot.stage_def import StageParams

        from textlab.features import scoring
        from textlab.loaders import Lines


        class ScoreParams(StageParams):
            scorer: str = "length"


        def counts(words: Annotated[list, Dep("work/tokens.json", loaders.JSON())]) -> Annotated[dict, Out("work/counts.json", loaders.JSON())]:
            found = {}
            for word in words:
                found[word] = found.get(word, 0) + 1
            return found


        def scores(params: ScoreParams, words: Annotated[list, Dep("work/tokens.json", loaders.JSON())]) -> Annotated[dict, Out("work/scores.json", loaders.JSON())]:
            scorer = scoring.SCORERS[params.scorer]
            return {word: scorer(word) for word in sorted(set(words))}


        def vocab(words: Annotated[list, Dep("work/tokens.json", loaders.JSON())]) -> Annotated[list, Out("work/vocab.txt", Lines(sep=","))]:
            return sorted(set(words))
    ''',
    "stages/modeling.py": '''
        """Stages that fit and apply the model."""
        from typing import Annotated, TypedDict

        from pivot import loaders
        from pivot.outputs import Dep, Out

        from textlab import models
        from textlab.cleaning import split_words
        from textlab.loaders import Lines


        class Predictions(TypedDict):
            per_line: Annotated[list, Out("work/predictions.json", loaders.JSON())]


        def train(
            counts: Annotated[dict, Dep("work/counts.json", loaders.JSON())],
            scores: Annotated[dict, Dep("work/scores.json", loaders.JSON())],
        ) -> Annotated[dict, Out("work/model.json", loaders.JSON())]:
            return models.DEFAULT.fit(counts, scores)


        def predict(
            model: Annotated[dict, Dep("work/model.json", loaders.JSON())],
            lines: Annotated[list, Dep("work/clean.txt", Lines())],
        ) -> Predictions:
            fitted = models.Model.load(model)
            return {"per_line": [fitted.predict(split_words(line)) for line in lines]}
    ''',
    "stages/reporting.py": '''
        """Stages that report."""
        from typing import Annotated

        from pivot import loaders
        from pivot.outputs import Dep, Metric, Out

        from textlab.report import summarize_short


        def report(
            predictions: Annotated[list, Dep("work/predictions.json", loaders.JSON())],
            counts: Annotated[dict, Dep("work/counts.json", loaders.JSON())],
        ) -> Annotated[dict, Metric("metrics/report.json")]:
            summary = summarize_short(predictions)
            summary["words"] = len(counts)
            return summary


        def summary(
            lengths: Annotated[dict, Dep("work/lengths.json", loaders.JSON())],
            report: Annotated[dict, Dep("metrics/report.json", loaders.JSON())],
        ) -> Annotated[str, Out("summary.txt", loaders.Text())]:
            return f"{lengths['lines']} lines, longest {lengths['longest']}, total {report['total']}\\n"
    ''',
    "textlab/__init__.py": '''
        """Text lab: a small text-processing package."""
        VERSION = "1.0"
    ''',
    "textlab/config.py": '''
        """Project-wide settings."""
        import enum

        MIN_LEN = 2
        MAX_LEN = MIN_LEN * 10
        STOPWORDS = {"the", "a", "an", "of", "and"}
        ROUND_TO = 3


        class Mode(enum.Enum):
            STRICT = "strict"
            LOOSE = "loose"


        MODE = Mode.STRICT
    ''',
    "textlab/util.py": '''
        """Small helpers shared by the project."""
        import functools


        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)

            return wrapper


        def clamp(value, low, high):
            return max(low, min(high, value))


        def make_scaler(factor):
            def scale(value):
                return value * factor

            return scale
    ''',
    "textlab/cleaning/__init__.py": '''
        """Cleaning raw text."""
        from textlab.cleaning.normalize import normalize, split_words

        __all__ = ["normalize", "split_words"]
    ''',
    "textlab/cleaning/accents.py": '''
        """Accent folding."""
        import unicodedata

        REPLACEMENTS = {"æ": "ae", "ø": "o"}


        def fold(text):
            text = "".join(REPLACEMENTS.get(ch, ch) for ch in text)
            return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ''',
    "textlab/cleaning/normalize.py": '''
        """Turn raw lines into clean lines and words."""
        import re

        from textlab import config
        from textlab.cleaning.accents import fold
        from textlab.util import logged

        WORD = re.compile(r"[a-z]+")


        def _squash(line):
            return " ".join(line.split())


        @logged
        def normalize(line):
            return _squash(fold(line.lower()))


        def split_words(line):
            return [w for w in WORD.findall(line) if w not in config.STOPWORDS and len(w) >= config.MIN_LEN]
    ''',
    "textlab/features/__init__.py": "",
    "textlab/features/scoring.py": '''
        """Word scores, picked by name from a dispatch table."""
        import functools

        from textlab.util import logged

        VOWELS = "aeiou"


        def score_length(word, weight=1.0):
            return len(word) * weight


        def score_vowels(word):
            return sum(ch in VOWELS for ch in word)


        @logged
        def score_rare(word):
            return 1.0 / (1 + len(set(word)))


        SCORERS = {
            "length": score_length,
            "vowels": score_vowels,
            "heavy": functools.partial(score_length, weight=2.0),
            "rare": score_rare,
        }
    ''',
    "textlab/models.py": '''
        """A tiny model with state and methods."""
        import dataclasses

        from textlab.util import clamp


        @dataclasses.dataclass(frozen=True)
        class Prior:
            alpha: float = 0.5
            beta: float = 0.25


        class Model:
            def __init__(self, prior):
                self.prior = prior
                self.weights = {}

            def fit(self, counts, scores):
                return {"weights": self._weights(counts, scores), "alpha": self.prior.alpha}

            def _weights(self, counts, scores):
                return {w: round(counts[w] * scores.get(w, 0) + self.prior.beta, 3) for w in sorted(counts)}

            @classmethod
            def load(cls, state):
                model = cls(Prior(alpha=state["alpha"]))
                model.weights = state["weights"]
                return model

            def predict(self, words):
                return clamp(sum(self.weights.get(w, 0.0) for w in words), 0, 1000)


        DEFAULT = Model(Prior(alpha=0.5))
    ''',
    "textlab/loaders.py": '''
        """A loader for text files holding one item per line."""
        import dataclasses
        import pathlib

        from pivot.loaders import Loader


        @dataclasses.dataclass(frozen=True)
        class Lines(Loader[list, list]):
            sep: str = "\\n"

            def load(self, path: pathlib.Path) -> list:
                text = path.read_text(encoding="utf-8")
                return text.split(self.sep) if text else []

            def save(self, data: list, path: pathlib.Path) -> None:
                path.write_text(self.sep.join(data), encoding="utf-8")
    ''',
    "textlab/report.py": '''
        """Report formatting."""
        import functools

        import textlab
        from textlab import config
        from textlab.util import make_scaler

        halve = make_scaler(0.5)


        def summarize(values, digits):
            total = sum(values)
            return {
                "total": round(total, digits),
                "half": round(halve(total), digits),
                "count": len(values),
                "mode": config.MODE.value,
                "version": textlab.VERSION,
            }


        def describe(report):
            return f"{report['count']} predictions"


        summarize_short = functools.partial(summarize, digits=config.ROUND_TO)
    ''',
}

ALL = {
    "clean",
    "tokens",
    "lengths",
    "counts",
    "scores",
    "vocab",
    "train",
    "predict",
    "report",
    "summary",
}
AFTER_TOKENS = {"counts", "scores", "vocab", "train", "predict", "report", "summary"}

# name -> (file, old text, new text, stages expected to run)
BEHAVIOUR_EDITS: dict[str, tuple[str, str, str, set[str]]] = {
    "stage body, same output": (
        "stages/prepare.py",
        "if line.strip()]",
        "if line.strip() and not line.startswith('#')]",
        {"clean"},
    ),
    "stage body, new output": (
        "stages/prepare.py",
        "normalize(line) for",
        "normalize(line) + ' extra' for",
        {"clean", "tokens", *AFTER_TOKENS},
    ),
    "stage result, one branch": (
        "stages/prepare.py",
        '"lines": len(sizes),',
        '"lines": len(sizes) + 1,',
        {"lengths", "summary"},
    ),
    "helper": (
        "textlab/cleaning/normalize.py",
        '" ".join(line.split())',
        '"  ".join(line.split())',
        {"clean", "tokens", "predict"},
    ),
    "helper of a helper": (
        "textlab/cleaning/accents.py",
        ".decode()",
        '.decode().replace("w", "")',
        {"clean", "tokens", *AFTER_TOKENS},
    ),
    "dict constant of a helper of a helper": (
        "textlab/cleaning/accents.py",
        '"ø": "o"',
        '"ø": "oe"',
        {"clean", "tokens", *AFTER_TOKENS},
    ),
    "decorator code": (
        "textlab/util.py",
        "return fn(*args, **kwargs)",
        "result = fn(*args, **kwargs)\n        return result",
        {"clean", "scores"},
    ),
    "decorated helper in a dispatch table": (
        "textlab/features/scoring.py",
        "1.0 / (1 + len(set(word)))",
        "1.0 / (2 + len(set(word)))",
        {"scores"},
    ),
    "dispatch table function in use": (
        "textlab/features/scoring.py",
        "len(word) * weight",
        "len(word) * weight + 1",
        {"scores", "train", "predict", "report", "summary"},
    ),
    "dispatch table function not in use": (
        "textlab/features/scoring.py",
        "sum(ch in VOWELS for ch in word)",
        "sum(ch in VOWELS for ch in word) * 2",
        {"scores"},
    ),
    "constant of a function not in use": (
        "textlab/features/scoring.py",
        'VOWELS = "aeiou"',
        'VOWELS = "aeiouy"',
        {"scores"},
    ),
    "partial bound argument": (
        "textlab/features/scoring.py",
        "weight=2.0)",
        "weight=3.0)",
        {"scores"},
    ),
    "dispatch table entry switched": (
        "textlab/features/scoring.py",
        '"length": score_length,',
        '"length": score_vowels,',
        {"scores", "train", "predict", "report", "summary"},
    ),
    "method of a module-level instance": (
        "textlab/models.py",
        '"alpha": self.prior.alpha}',
        '"alpha": self.prior.alpha, "kind": "linear"}',
        {"train", "predict"},
    ),
    "method called by a method": (
        "textlab/models.py",
        "+ self.prior.beta, 3)",
        "+ self.prior.beta * 2, 3)",
        {"train", "predict", "report", "summary"},
    ),
    "instance attribute": (
        "textlab/models.py",
        "DEFAULT = Model(Prior(alpha=0.5))",
        "DEFAULT = Model(Prior(alpha=0.7))",
        {"train", "predict"},
    ),
    "dataclass default": (
        "textlab/models.py",
        "beta: float = 0.25",
        "beta: float = 0.5",
        {"train", "predict", "report", "summary"},
    ),
    "classmethod": (
        "textlab/models.py",
        'model.weights = state["weights"]',
        'model.weights = {k: v * 2 for k, v in state["weights"].items()}',
        {"train", "predict", "report", "summary"},
    ),
    "method used by another stage only": (
        "textlab/models.py",
        "for w in words), 0, 1000)",
        "for w in words) + 1, 0, 1000)",
        {"train", "predict", "report", "summary"},
    ),
    "helper behind a method": (
        "textlab/util.py",
        "max(low, min(high, value))",
        "max(low, min(high, value)) * 2",
        {"train", "predict", "report", "summary"},
    ),
    "set constant": (
        "textlab/config.py",
        '"of", "and"}',
        '"of", "and", "in"}',
        {"tokens", *AFTER_TOKENS},
    ),
    "constant another constant is computed from": (
        "textlab/config.py",
        "MIN_LEN = 2",
        "MIN_LEN = 3",
        {"tokens", "lengths", *AFTER_TOKENS},
    ),
    "computed constant": (
        "textlab/config.py",
        "MAX_LEN = MIN_LEN * 10",
        "MAX_LEN = MIN_LEN * 15",
        {"lengths", "summary"},
    ),
    "enum value": (
        "textlab/config.py",
        'STRICT = "strict"',
        'STRICT = "exact"',
        {"report", "summary"},
    ),
    "enum member chosen": (
        "textlab/config.py",
        "MODE = Mode.STRICT",
        "MODE = Mode.LOOSE",
        {"report", "summary"},
    ),
    "constant bound into a partial": (
        "textlab/config.py",
        "ROUND_TO = 3",
        "ROUND_TO = 1",
        {"report", "summary"},
    ),
    "constant in a package __init__": (
        "textlab/__init__.py",
        'VERSION = "1.0"',
        'VERSION = "1.1"',
        {"report", "summary"},
    ),
    "closure variable": (
        "textlab/report.py",
        "make_scaler(0.5)",
        "make_scaler(0.25)",
        {"report", "summary"},
    ),
    "closure body": (
        "textlab/util.py",
        "return value * factor",
        "return value * factor * 3",
        {"report", "summary"},
    ),
    "function imported inside a stage and through a package re-export": (
        "textlab/cleaning/normalize.py",
        "if w not in config.STOPWORDS and len(w) >= config.MIN_LEN]",
        "if len(w) >= config.MIN_LEN and w not in config.STOPWORDS]",
        {"tokens", "predict"},
    ),
    "compiled regex": (
        "textlab/cleaning/normalize.py",
        'r"[a-z]+"',
        'r"[a-z]{2,}"',
        {"tokens", "predict"},
    ),
    "custom loader code": (
        "textlab/loaders.py",
        "if text else []",
        "if text else list()",
        {"clean", "tokens", "vocab", "predict"},
    ),
    "custom loader option": ("stages/features.py", 'Lines(sep=","))', 'Lines(sep=";"))', {"vocab"}),
    "params class default": (
        "stages/features.py",
        'scorer: str = "length"',
        'scorer: str = "vowels"',
        {"scores"},
    ),
    "params value at registration": (
        "pipeline.py",
        'ScoreParams(scorer="length")',
        'ScoreParams(scorer="vowels")',
        {"scores", "train", "predict", "report", "summary"},
    ),
    "class in type hints": (
        "stages/modeling.py",
        "per_line: Annotated[list,",
        "per_line: Annotated[list[float],",
        {"predict"},
    ),
    "library function switched": (
        "stages/prepare.py",
        "from math import floor\n",
        "from math import ceil as floor\n",
        {"lengths", "summary"},
    ),
}

COSMETIC_EDITS: dict[str, tuple[str, str, str]] = {
    "comment in a stage": (
        "stages/features.py",
        "    found = {}\n",
        "    # count each word\n    found = {}  # word -> count\n",
    ),
    "docstring added to a stage": (
        "stages/modeling.py",
        "    fitted = models.Model.load(model)\n",
        '    """Predict a score per line."""\n    fitted = models.Model.load(model)\n',
    ),
    "module docstring": (
        "textlab/config.py",
        '"""Project-wide settings."""',
        '"""Settings shared by every stage\n\nof the project."""',
    ),
    "helper reformatted": (
        "textlab/models.py",
        'return {"weights": self._weights(counts, scores), "alpha": self.prior.alpha}',
        'return {\n            "weights": self._weights(counts, scores),\n            "alpha": self.prior.alpha,\n        }',
    ),
    "lines shift above a decorated helper": (
        "textlab/cleaning/normalize.py",
        "import re\n",
        "import re\n\n# Words are runs of ASCII letters.\n# Everything else separates them.\n",
    ),
    "function added": (
        "textlab/util.py",
        "def clamp(",
        "def unused(value):\n    return value\n\n\ndef clamp(",
    ),
    "definitions reordered": (
        "textlab/features/scoring.py",
        "def score_length(word, weight=1.0):\n    return len(word) * weight\n\n\ndef score_vowels(word):\n    return sum(ch in VOWELS for ch in word)\n",
        "def score_vowels(word):\n    return sum(ch in VOWELS for ch in word)\n\n\ndef score_length(word, weight=1.0):\n    return len(word) * weight\n",
    ),
    "constant added": (
        "textlab/config.py",
        "ROUND_TO = 3\n",
        "ROUND_TO = 3\nPALETTE = ['red', 'blue']\n",
    ),
    "set literal reordered": (
        "textlab/config.py",
        '{"the", "a", "an", "of", "and"}',
        '{"and", "of", "an", "a", "the"}',
    ),
    "function nothing reaches": (
        "textlab/report.py",
        "return f\"{report['count']} predictions\"",
        "return f\"{report['count']} predictions made\"",
    ),
    "pass and a bare string": (
        "textlab/cleaning/accents.py",
        "def fold(text):\n",
        'def fold(text):\n    "Fold accents away."\n    pass\n',
    ),
    "dict literal reformatted": (
        "textlab/features/scoring.py",
        '"rare": score_rare,\n}',
        '"rare": score_rare}',
    ),
    "imports reordered": (
        "stages/prepare.py",
        "import statistics\nfrom math import floor\n",
        "from math import floor\nimport statistics\n",
    ),
    "comment in pipeline.py": (
        "pipeline.py",
        "# The pipeline of the text lab project.",
        "# The pipeline of the text lab project: ten stages.",
    ),
    "class added to a used module": (
        "textlab/models.py",
        "DEFAULT = Model(",
        "class Unused:\n    def method(self):\n        return 1\n\n\nDEFAULT = Model(",
    ),
    "quotes and parentheses": (
        "stages/reporting.py",
        'summary["words"] = len(counts)',
        "summary['words'] = (len(counts))",
    ),
}


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # files are rewritten within a second
    env["NO_COLOR"] = "1"
    return env


def pivot(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pivot", *args],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"pivot {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def repro(root: Path, *args: str) -> dict[str, str]:
    """`pivot repro --json *args` -> {stage: status}."""
    stages = json.loads(pivot(root, "repro", "--json", "-j", "1", *args).stdout.splitlines()[-1])[
        "stages"
    ]
    return {name: value["status"] for name, value in stages.items()}


def write(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project in a git repository, fully run once (per worker)."""
    root = tmp_path_factory.mktemp("textlab") / "project"
    root.mkdir()
    write(root, FILES)
    for args in (
        ["init", "-q"],
        ["config", "user.email", "e2e@pivot.invalid"],
        ["config", "user.name", "e2e"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    pivot(root, "init")
    assert set(repro(root).values()) == {"ran"}
    assert set(repro(root).values()) == {"skipped"}
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    """A private copy of the finished project (outputs, locks, cache and state included)."""
    copy = tmp_path / "project"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def apply(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {relative}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def ran(statuses: Mapping[str, str]) -> set[str]:
    assert set(statuses) == ALL
    assert "failed" not in statuses.values()
    return {name for name, status in statuses.items() if status == "ran"}


def test_the_project_has_enough_edits() -> None:
    assert len(BEHAVIOUR_EDITS) + len(COSMETIC_EDITS) >= 40


@pytest.mark.parametrize("name", list(BEHAVIOUR_EDITS))
def test_a_behaviour_edit_reruns_exactly_what_it_affects(project: Path, name: str) -> None:
    relative, old, new, expected = BEHAVIOUR_EDITS[name]
    apply(project, relative, old, new)

    assert ran(repro(project)) == expected


def test_after_the_reruns_the_lock_files_hold_the_new_code(project: Path) -> None:
    for name in (
        "helper of a helper",
        "method called by a method",
        "constant bound into a partial",
    ):
        apply(project, *BEHAVIOUR_EDITS[name][:3])
    assert ran(repro(project))

    assert ran(repro(project)) == set()


@pytest.mark.parametrize("name", list(COSMETIC_EDITS))
def test_a_cosmetic_edit_reruns_nothing(project: Path, name: str) -> None:
    relative, old, new = COSMETIC_EDITS[name]
    apply(project, relative, old, new)

    assert ran(repro(project)) == set()
