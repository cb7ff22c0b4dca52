"""What a run observed beyond a stage's static manifest: the references a lock records in
`observed`. Cheap and import-light, so a pool worker can tell whether the manifest it was given
still stands; imports nothing of Pivot's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["kept_observed", "prune_observed"]


def prune_observed(manifest: Mapping[str, str], refs: Sequence[str]) -> tuple[str, ...]:
    """The references a run observed that its static manifest does not already cover."""
    kept: list[str] = []
    for ref in sorted(set(refs)):
        kind, _, rest = ref.partition(":")
        if kind == "code":
            module_name, _, qualname = rest.partition(":")
            name = f"{module_name}.{qualname}"
            if any(f"{k}:{name}" in manifest for k in ("stage", "func", "method", "class")):
                continue
        elif kind == "module":
            prefixes = tuple(f"{k}:{rest}." for k in ("func", "class", "const", "method"))
            if f"module:{rest}" in manifest or f"effects:{rest}" in manifest:
                continue
            if any(entry.startswith(prefixes) for entry in manifest):
                continue
        elif kind == "file" and f"file:{rest}" in manifest:
            continue
        kept.append(ref)
    return tuple(kept)


def kept_observed(
    manifest: Mapping[str, str], recorded: Sequence[str], observed: Sequence[str]
) -> tuple[str, ...]:
    """The observed references a run's lock records (sorted): those the run entered that
    `manifest` does not cover, and those recorded last time (`recorded`) that it entered again.
    When this equals `recorded`, the lock keeps `manifest` as it is; else the stage's manifest
    must be made again to cover them."""
    again = set(observed) & set(recorded)
    return tuple(sorted(again | set(prune_observed(manifest, observed))))
