"""Things without a stable value produce a warning naming the global and the stage, never a crash."""

from __future__ import annotations

PROJECT = {
    "pipeline.py": """
        import sys
        import threading

        LOCK = threading.Lock()
        STREAM = sys.stderr
        NUMBERS = (i for i in range(3))


        class Holder:
            def __init__(self, name):
                self.name = name
                self.guard = threading.Lock()


        HOLDER = Holder("holder")


        def make_reader(lock):
            def read():
                with lock:
                    return 1

            return read


        read = make_reader(threading.Lock())


        def stage():
            with LOCK:
                return STREAM.name, next(NUMBERS), HOLDER.name, read()
    """
}


def test_each_unhashable_global_is_named_with_the_stage(projects):
    found = projects.fingerprint(PROJECT)

    assert len(found.warnings) == 5
    assert all(w.startswith("stage 'pipeline:stage': ") for w in found.warnings)
    text = "\n".join(found.warnings)
    assert "global pipeline.LOCK cannot be fingerprinted" in text
    assert "global pipeline.STREAM cannot be fingerprinted" in text
    assert "global pipeline.NUMBERS cannot be fingerprinted" in text
    assert "global pipeline.HOLDER.guard cannot be fingerprinted" in text
    assert "closure variable 'lock' of func:pipeline.make_reader.<locals>.read" in text


def test_unhashable_globals_still_have_a_stable_entry(projects):
    first = projects.fingerprint(PROJECT)
    second = projects.fingerprint(PROJECT)

    assert {"const:pipeline.LOCK", "const:pipeline.HOLDER"} <= set(first.manifest)
    assert first.manifest == second.manifest


def test_hashable_parts_next_to_an_unhashable_one_still_count(projects):
    edited = projects.edit(PROJECT, "pipeline.py", 'Holder("holder")', 'Holder("keeper")')

    assert projects.changes(PROJECT, edited) == {"const:pipeline.HOLDER"}


def test_an_object_that_breaks_introspection_is_a_warning_not_a_crash(projects):
    files = {
        "pipeline.py": """
            class Weird:
                @property
                def __dict__(self):
                    raise RuntimeError("no introspection here")


            WEIRD = Weird()


            def stage():
                return WEIRD
        """
    }

    found = projects.fingerprint(files)

    assert "const:pipeline.WEIRD" in found.manifest
    assert len(found.warnings) == 1
    assert "global pipeline.WEIRD cannot be fingerprinted: raised RuntimeError" in found.warnings[0]
