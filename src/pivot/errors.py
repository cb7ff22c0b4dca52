"""The one exception tree of Pivot; imports nothing of ours.

    PivotError
    ├── StageDefinitionError (TypeError)    a stage function or its annotations are unusable
    │   ├── NotModuleLevelError             closure, lambda, nested, factory-made or __main__
    │   ├── TypeHintError                   hints that cannot be resolved
    │   ├── AnnotationError                 a marker is missing, malformed or misused
    │   ├── PlaceholderDepError             PlaceholderDep without a path override
    │   └── IncrementalOutError             IncrementalOut input/output mismatch
    ├── PipelineConfigError (ValueError)    registration/composition of stages conflicts
    │   ├── StageNameError                  duplicate or malformed stage name, self-include
    │   ├── OverrideError                   dep/out path overrides that do not fit
    │   ├── OutputConflictError             two stages own the same output, or nest in a dir
    │   └── PathEscapeError                 absolute path or '..' leaving the project root
    ├── OutputValidationError (ValueError)  a stage's return value does not match its outputs
    ├── LoaderError                         a loader could not load or save a file
    ├── ProjectError                        finding the project, its config, its pipeline
    │   ├── NotInitializedError
    │   ├── AlreadyInitializedError
    │   ├── ConfigError
    │   ├── DiscoveryError                  pipeline.py missing, raising, or without `pipeline`
    │   └── RevisionError                   a git revision that does not exist or cannot be read
    ├── GraphError                          the DAG cannot be built
    │   ├── CycleError
    │   ├── MissingDependencyError
    │   └── UnknownStageError (KeyError)
    ├── ExecutionError                      running stages failed (carries the failures)
    │   ├── StageFailedError
    │   └── NoRecordError                   a command needs a run/file that is not there
    └── StoreError                          cache, lock files, state db
        ├── CacheCorruptError
        ├── LockFileError
        └── RemoteError

Every error pickles: constructors take only the message (plus plain keyword values).
"""

from __future__ import annotations

__all__ = [
    "AlreadyInitializedError",
    "AnnotationError",
    "CacheCorruptError",
    "ConfigError",
    "CycleError",
    "DiscoveryError",
    "ExecutionError",
    "GraphError",
    "IncrementalOutError",
    "LoaderError",
    "LockFileError",
    "MissingDependencyError",
    "NoRecordError",
    "NotInitializedError",
    "NotModuleLevelError",
    "OutputConflictError",
    "OutputValidationError",
    "OverrideError",
    "PathEscapeError",
    "PipelineConfigError",
    "PivotError",
    "PlaceholderDepError",
    "ProjectError",
    "RemoteError",
    "RevisionError",
    "StageDefinitionError",
    "StageFailedError",
    "StageNameError",
    "StoreError",
    "TypeHintError",
    "UnknownStageError",
]


class PivotError(Exception):
    """Root of every error Pivot raises on purpose; its message says what is wrong and the fix."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


# --- definition -------------------------------------------------------------------------------


class StageDefinitionError(PivotError, TypeError):
    """A stage function, its annotations or its loaders cannot be used as declared."""


class NotModuleLevelError(StageDefinitionError):
    """A stage, loader, TypedDict or params class is not importable by module and name."""


class TypeHintError(StageDefinitionError):
    """`typing.get_type_hints` could not resolve a stage's annotations."""


class AnnotationError(StageDefinitionError):
    """An output or dependency marker is missing, malformed or used where it cannot work."""


class PlaceholderDepError(StageDefinitionError):
    """A `PlaceholderDep` has no path: it must be given with `dep_path_overrides`."""


class IncrementalOutError(StageDefinitionError):
    """An `IncrementalOut` input does not match its output (name, path or loader)."""


class PipelineConfigError(PivotError, ValueError):
    """Stages registered or included into a pipeline conflict with each other or the project."""


class StageNameError(PipelineConfigError):
    """A stage name is taken, malformed, or a pipeline includes itself."""


class OverrideError(PipelineConfigError):
    """`dep_path_overrides` / `out_path_overrides` name unknown keys or give unusable values."""


class OutputConflictError(PipelineConfigError):
    """Two stages declare the same output, or one writes inside another's output directory."""


class PathEscapeError(PipelineConfigError):
    """A declared path is absolute or leaves the project root with '..'."""


class OutputValidationError(PivotError, ValueError):
    """A stage returned a value that does not match its declared outputs (nothing was written)."""


class LoaderError(PivotError):
    """A loader failed to read or write a file."""


# --- project ----------------------------------------------------------------------------------


class ProjectError(PivotError):
    """The project, its configuration or its pipeline could not be found or loaded."""


class NotInitializedError(ProjectError):
    """No `.pivot/` directory was found in the current directory or any parent."""


class AlreadyInitializedError(ProjectError):
    """`pivot init` was run where a project already exists."""


class ConfigError(ProjectError):
    """`.pivot/config.yaml` is malformed or holds an unknown or invalid setting."""


class DiscoveryError(ProjectError):
    """`pipeline.py` is missing, raised while importing, or binds no `pipeline`."""


class RevisionError(ProjectError):
    """A git revision named on the command line does not exist, or git cannot read it."""


# --- graph ------------------------------------------------------------------------------------


class GraphError(PivotError):
    """The stages cannot be connected into a DAG."""


class CycleError(GraphError):
    """Stages depend on each other in a cycle."""


class MissingDependencyError(GraphError):
    """A dependency is neither produced by a stage nor present on disk."""


class UnknownStageError(GraphError, KeyError):
    """A stage named on the command line does not exist."""


# --- execution --------------------------------------------------------------------------------


class ExecutionError(PivotError):
    """One or more stages failed; the message lists each failure."""


class StageFailedError(ExecutionError):
    """A single stage raised; the message holds the user code's traceback."""


class NoRecordError(ExecutionError):
    """`run`, `checkout` or `commit` was asked for something that was never run or is missing."""


# --- storage ----------------------------------------------------------------------------------


class StoreError(PivotError):
    """The cache, a lock file or the state db cannot be used."""


class CacheCorruptError(StoreError):
    """A cached blob or manifest is missing or does not match its hash."""


class LockFileError(StoreError):
    """A lock file cannot be read or written."""


class RemoteError(StoreError):
    """A remote cannot be reached or refused a transfer."""
