"""The exception tree: one root, builtin bases where users expect them, pickling with the message."""

from __future__ import annotations

import inspect
import pickle

import pytest

from pivot import errors

ALL_CLASSES = [
    value
    for _name, value in inspect.getmembers(errors, inspect.isclass)
    if value.__module__ == errors.__name__
]


def test_all_lists_every_exception_class_and_nothing_else() -> None:
    assert sorted(errors.__all__) == sorted(cls.__name__ for cls in ALL_CLASSES)
    assert len(ALL_CLASSES) > 20


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_exception_is_under_pivot_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, errors.PivotError)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_exception_pickles_with_its_message(cls: type[BaseException]) -> None:
    message = f"stage 'train': {cls.__name__} happened; fix it like this"
    error = cls(message)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is cls
    assert str(clone) == message
    assert clone.args == (message,)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_exception_is_drawn_in_the_module_docstring_tree(cls: type[BaseException]) -> None:
    assert errors.__doc__ is not None
    assert cls.__name__ in errors.__doc__


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_exception_has_a_docstring(cls: type[BaseException]) -> None:
    assert cls.__doc__ and cls.__doc__.strip()


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.StageDefinitionError, TypeError),
        (errors.NotModuleLevelError, TypeError),
        (errors.TypeHintError, TypeError),
        (errors.AnnotationError, TypeError),
        (errors.PlaceholderDepError, TypeError),
        (errors.IncrementalOutError, TypeError),
        (errors.PipelineConfigError, ValueError),
        (errors.StageNameError, ValueError),
        (errors.OverrideError, ValueError),
        (errors.OutputConflictError, ValueError),
        (errors.PathEscapeError, ValueError),
        (errors.OutputValidationError, ValueError),
        (errors.UnknownStageError, KeyError),
    ],
)
def test_builtin_bases_users_expect(cls: type[BaseException], builtin: type[BaseException]) -> None:
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("message")


def test_key_error_subclass_prints_its_message_not_a_repr() -> None:
    # KeyError.__str__ would print "'no stage named x'" with quotes.
    assert str(errors.UnknownStageError("no stage named 'x'")) == "no stage named 'x'"


def test_an_error_without_a_message_prints_its_class_name() -> None:
    assert str(errors.CycleError()) == "CycleError"


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (errors.NotModuleLevelError, errors.StageDefinitionError),
        (errors.TypeHintError, errors.StageDefinitionError),
        (errors.AnnotationError, errors.StageDefinitionError),
        (errors.PlaceholderDepError, errors.StageDefinitionError),
        (errors.IncrementalOutError, errors.StageDefinitionError),
        (errors.StageNameError, errors.PipelineConfigError),
        (errors.OverrideError, errors.PipelineConfigError),
        (errors.OutputConflictError, errors.PipelineConfigError),
        (errors.PathEscapeError, errors.PipelineConfigError),
        (errors.NotInitializedError, errors.ProjectError),
        (errors.AlreadyInitializedError, errors.ProjectError),
        (errors.ConfigError, errors.ProjectError),
        (errors.DiscoveryError, errors.ProjectError),
        (errors.RevisionError, errors.ProjectError),
        (errors.CycleError, errors.GraphError),
        (errors.MissingDependencyError, errors.GraphError),
        (errors.UnknownStageError, errors.GraphError),
        (errors.CacheCorruptError, errors.StoreError),
        (errors.LockFileError, errors.StoreError),
        (errors.RemoteError, errors.StoreError),
        (errors.FilesystemError, errors.StoreError),
        (errors.DiskFullError, errors.FilesystemError),
        (errors.PermissionDeniedError, errors.FilesystemError),
        (errors.PathTooLongError, errors.FilesystemError),
    ],
)
def test_tree_shape_matches_the_drawing(
    child: type[BaseException], parent: type[BaseException]
) -> None:
    assert issubclass(child, parent)
