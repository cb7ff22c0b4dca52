"""Watching a run: the user code it enters (sys.monitoring on 3.12+, a profile hook on 3.11), the
project files it opens, and the data files user modules read while being imported."""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path

import pytest

from pivot.fingerprint import observe, observing, watch_imports
from tests.unit.fingerprint.conftest import imported_from, write_files

FILES = {
    "data/settings.json": '{"days": 3}',
    "data/input.txt": "hello",
    "zoo/__init__.py": "",
    "zoo/animals.py": """
        import json

        with open("data/settings.json") as handle:
            SETTINGS = json.load(handle)


        class Animal:
            def speak(self):
                return "..."


        class Dog(Animal):
            def speak(self):
                return helper() + "woof"


        def helper():
            return "a "


        def not_called():
            return 0


        def nested():
            def inner():
                return 1

            return inner()


        def in_thread(out):
            out.append(Dog().speak())
    """,
    "zoo/late.py": """
        def late_function():
            return 1


        VALUE = late_function()
    """,
}


@pytest.fixture
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_files(tmp_path, FILES)
    monkeypatch.chdir(tmp_path)
    with imported_from(tmp_path):
        with watch_imports(str(tmp_path)):
            module = importlib.import_module("zoo.animals")
        yield tmp_path, module


def test_the_code_entered_is_recorded_once_per_definition(zoo):
    root, animals = zoo
    with observing(str(root)) as seen:
        animals.Dog().speak()
        animals.nested()
        animals.Dog().speak()

    assert seen[0].code == (
        "code:zoo.animals:Dog.speak",
        "code:zoo.animals:helper",
        "code:zoo.animals:nested",
    )


def test_a_second_observation_in_the_same_process_sees_the_code_again(zoo):
    root, animals = zoo
    for _ in range(2):
        with observing(str(root)) as seen:
            animals.helper()
        assert seen[0].code == ("code:zoo.animals:helper",)


def test_code_run_in_a_thread_is_seen(zoo):
    root, animals = zoo
    out: list[str] = []
    with observing(str(root)) as seen:
        thread = threading.Thread(target=animals.in_thread, args=(out,))
        thread.start()
        thread.join()

    assert out == ["a woof"]
    assert "code:zoo.animals:Dog.speak" in seen[0].code


def test_a_module_imported_during_the_run_is_seen_by_its_code(zoo):
    root, _animals = zoo
    with observing(str(root)) as seen:
        importlib.import_module("zoo.late")

    assert "code:zoo.late:late_function" in seen[0].code


def test_files_read_and_written_are_told_apart(zoo):
    root, _animals = zoo
    with observing(str(root)) as seen:
        (root / "data/input.txt").read_text()
        (root / "written.txt").write_text("x")
        with open("/dev/null") as handle:  # outside the project: not recorded
            handle.read()

    assert seen[0].reads == ("data/input.txt",)
    assert seen[0].writes == ("written.txt",)


def test_a_data_file_read_at_import_time_is_attributed_to_its_module(zoo):
    root, animals = zoo

    assert observe.import_reads(animals.__file__) == (str(root / "data/settings.json"),)


def test_the_hook_in_use_matches_the_python_version():
    # sys.monitoring is the 3.12+ path; this suite also runs on 3.13 (`make test-3.13`)
    assert hasattr(sys, "monitoring") == (sys.version_info >= (3, 12))
