"""Code identity of a stage: what it runs, as a manifest of entry name -> hash.

The manifest changes when, and only when, the behaviour of a stage's code can: its function,
every user function, class, method and module-level value it reaches (from normalised
source, so comments, docstrings and formatting do not count), and the `extra` objects the
caller adds (loaders, params classes). Library code is named, never hashed. Manifests are
cached by the (mtime_ns, size) of every source file read. See docs/code-change-detection.md.
Must not import the plan, execution, CLI or store layers.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from pivot.fingerprint.cache import ManifestCache
    from pivot.fingerprint.observe import Observation, observing, watch_imports
    from pivot.fingerprint.observed import kept_observed, prune_observed
    from pivot.fingerprint.sources import SourceStats
    from pivot.fingerprint.stage import (
        Fingerprint,
        StageRequest,
        fingerprint_stage,
        fingerprint_stages,
        get_stage_fingerprint,
    )

_LAZY = {  # name -> its module: a pool worker imports `observe` alone, without the walkers
    "ManifestCache": "cache",
    "Observation": "observe",
    "observing": "observe",
    "watch_imports": "observe",
    "SourceStats": "sources",
    "Fingerprint": "stage",
    "StageRequest": "stage",
    "fingerprint_stage": "stage",
    "fingerprint_stages": "stage",
    "get_stage_fingerprint": "stage",
    "kept_observed": "observed",
    "prune_observed": "observed",
}

__all__ = [
    "Fingerprint",
    "ManifestCache",
    "Observation",
    "SourceStats",
    "StageRequest",
    "fingerprint_stage",
    "fingerprint_stages",
    "get_stage_fingerprint",
    "kept_observed",
    "observing",
    "prune_observed",
    "watch_imports",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pivot.fingerprint' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"pivot.fingerprint.{module}"), name)
    globals()[name] = value
    return value
