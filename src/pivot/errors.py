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
    │   │   └── PipelineFileError           pivot.yaml / params.yaml wrong at a file:line
    │   ├── MigrationError                  dvc.yaml cannot be imported, or exported to
    │   ├── RevisionError                   a git revision that does not exist or cannot be read
    │   └── ProjectLockedError              another command holds the project lock (--no-wait)
    ├── GraphError                          the DAG cannot be built
    │   ├── CycleError
    │   ├── MissingDependencyError
    │   └── UnknownStageError (KeyError)
    ├── NoRecordError                       a command needs a run or a file that is not there
    ├── UsageError (ValueError)             a command or library call given unusable arguments
    ├── ClusterError                        a Dask cluster cannot be reached or used
    └── StoreError                          cache, lock files, state db, files Pivot writes
        ├── CacheCorruptError
        ├── LockFileError
        ├── RemoteError                     a remote cannot be reached or refused a transfer
        └── FilesystemError                 the OS refused a read or write (path, OS error, fix)
            ├── DiskFullError               no space left (ENOSPC, EDQUOT)
            ├── PermissionDeniedError       read-only file system or directory (EACCES, EROFS)
            └── PathTooLongError            a path or file name too long (ENAMETOOLONG)

Every error pickles: constructors take only the message (plus plain keyword values).
OS errors become `FilesystemError`s in one place, `pivot.fs.map_os_errors`.
"""

from __future__ import annotations

__all__ = [
    "AlreadyInitializedError",
    "AnnotationError",
    "CacheCorruptError",
    "ClusterError",
    "ConfigError",
    "CycleError",
    "DiscoveryError",
    "DiskFullError",
    "FilesystemError",
    "GraphError",
    "IncrementalOutError",
    "LoaderError",
    "LockFileError",
    "MigrationError",
    "MissingDependencyError",
    "NoRecordError",
    "NotInitializedError",
    "NotModuleLevelError",
    "OutputConflictError",
    "OutputValidationError",
    "OverrideError",
    "PathEscapeError",
    "PathTooLongError",
    "PermissionDeniedError",
    "PipelineConfigError",
    "PipelineFileError",
    "PivotError",
    "PlaceholderDepError",
    "ProjectError",
    "ProjectLockedError",
    "RemoteError",
    "RevisionError",
    "StageDefinitionError",
    "StageNameError",
    "StoreError",
    "TypeHintError",
    "UnknownStageError",
    "UsageError",
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


class PipelineFileError(DiscoveryError):
    """`pivot.yaml` or `params.yaml` is malformed; the message names the file, line and fix."""


class MigrationError(ProjectError):
    """A `dvc.yaml` cannot be converted to Pivot stages, or a pipeline to `dvc.yaml`."""


class RevisionError(ProjectError):
    """A git revision named on the command line does not exist, or git cannot read it."""


class ProjectLockedError(ProjectError):
    """Another Pivot command holds the project lock and `--no-wait` was given."""


# --- graph ------------------------------------------------------------------------------------


class GraphError(PivotError):
    """The stages cannot be connected into a DAG."""


class CycleError(GraphError):
    """Stages depend on each other in a cycle."""


class MissingDependencyError(GraphError):
    """A dependency is neither produced by a stage nor present on disk."""


class UnknownStageError(GraphError, KeyError):
    """A stage named on the command line does not exist."""


# --- records ----------------------------------------------------------------------------------


class NoRecordError(PivotError):
    """`checkout` or `commit` was asked for a stage that never ran or an output that is missing."""


class UsageError(PivotError, ValueError):
    """A command or library function was called with arguments it cannot use."""


# --- storage ----------------------------------------------------------------------------------


class ClusterError(PivotError):
    """A Dask cluster cannot be reached or used (not installed, no scheduler, no remote)."""


class StoreError(PivotError):
    """The cache, a lock file, the state db or a file Pivot writes cannot be used."""


class CacheCorruptError(StoreError):
    """A cached blob or manifest is missing or does not match its hash."""


class LockFileError(StoreError):
    """A lock file cannot be read or written."""


class RemoteError(StoreError):
    """A remote cannot be reached or refused a transfer."""


class FilesystemError(StoreError):
    """The operating system refused a read or write Pivot made; `path` names the file and
    `errno` the OS error (0 when unknown)."""

    def __init__(self, message: str, *, path: str = "", errno: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class DiskFullError(FilesystemError):
    """No space left on the device (or the disk quota is used up)."""


class PermissionDeniedError(FilesystemError):
    """A file or directory is read-only, or the file system is mounted read-only."""


class PathTooLongError(FilesystemError):
    """A path or one of its names is longer than the file system allows."""
