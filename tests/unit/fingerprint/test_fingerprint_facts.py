"""Source files' facts kept between runs: an unchanged module is not parsed again when a module
it imports changes, and what its code reads is still resolved afresh."""

from __future__ import annotations

import ast
import dis
import os
import types

import pytest

from pivot.fingerprint import StageRequest, facts, fingerprint_stages, sources, syntax
from pivot.fingerprint.model import global_names
from tests.unit.fingerprint.conftest import DictCache, imported_from, resolve, rewrite, settled

pytestmark = pytest.mark.usefixtures("no_bytecode")

PROJECT = {
    "pipeline.py": """
        import first
        import second


        def use_first(x):
            return first.f(x) + first.LIMIT


        def use_second(x):
            return second.g(x)
    """,
    "first.py": """
        LIMIT = 3


        def f(x):
            return x + 1
    """,
    "second.py": """
        import first

        first.LIMIT = 5


        def g(x):
            return x * 2
    """,
}


@pytest.fixture
def parsed(monkeypatch) -> list[str]:
    """The names of the files parsed, in order (the real parser runs)."""
    names: list[str] = []
    real = sources.parse_module

    def counting(source: bytes, filename: str):
        names.append(os.path.basename(filename))
        return real(source, filename)

    monkeypatch.setattr(sources, "parse_module", counting)
    return names


def started(projects):
    """A project's first run: its directory, the cache it filled and its fingerprints."""
    directory = projects.new_directory()
    projects.write(directory, PROJECT)
    cache = DictCache()
    return directory, cache, both(directory, cache)


def both(directory, cache):
    """The fingerprints of both stages in one batch, as a run computes them."""
    with imported_from(directory):
        requests = [StageRequest(n, resolve(f"pipeline:{n}")) for n in ("use_first", "use_second")]
        return fingerprint_stages(requests, cache=cache, root=directory, stats=settled())


def test_a_helper_edit_parses_only_the_edited_file(projects, parsed):
    directory, cache, before = started(projects)
    assert set(parsed) == {"pipeline.py", "first.py", "second.py"}

    rewrite(directory, "second.py", "x * 2", "x * 3")
    parsed.clear()
    after = both(directory, cache)

    assert parsed == ["second.py"]
    assert projects.changed(before["use_second"], after["use_second"]) == {"func:second.g"}
    assert projects.changed(before["use_first"], after["use_first"]) == set()
    assert after == both(directory, None)  # as computed from the sources alone


def test_a_value_an_imported_module_sets_still_counts_with_stored_facts(projects, parsed):
    directory, cache, before = started(projects)

    rewrite(directory, "second.py", "first.LIMIT = 5", "first.LIMIT = 6")
    parsed.clear()
    after = both(directory, cache)

    assert "pipeline.py" not in parsed
    assert projects.changed(before["use_first"], after["use_first"]) == {"const:first.LIMIT"}
    assert after == both(directory, None)


def test_an_edited_stage_module_is_read_again(projects, parsed):
    directory, cache, before = started(projects)

    rewrite(directory, "pipeline.py", "first.f(x) + first.LIMIT", "first.f(x) - first.LIMIT")
    parsed.clear()
    after = both(directory, cache)

    assert parsed == ["pipeline.py"]
    assert projects.changed(before["use_first"], after["use_first"]) == {"stage:pipeline.use_first"}
    assert projects.changed(before["use_second"], after["use_second"]) == set()


def test_damaged_facts_are_read_again_from_the_source(projects, parsed):
    directory, cache, before = started(projects)
    facts = [key for key in cache.data if key.startswith("facts/")]
    assert facts
    for key in facts:
        cache.data[key] = cache.data[key][:10]
    rewrite(directory, "second.py", "x * 2", "x * 3")
    parsed.clear()

    after = both(directory, cache)

    assert set(parsed) == {"pipeline.py", "first.py", "second.py"}
    assert projects.changed(before["use_first"], after["use_first"]) == set()


def test_a_walk_unpacks_only_the_stored_definitions_it_reads(projects, monkeypatch):
    """A module of 40 stages, one reaching first.py: after a body edit there, that stage alone
    is walked again, and of its module's stored definitions only its own is unpacked."""
    many = "import first\nimport second\n\n\ndef use_first(x):\n    return first.f(x)\n"
    many += "".join(f"\n\ndef s{i}(x):\n    return second.g(x) + {i}\n" for i in range(39))
    directory = projects.new_directory()
    helpers = {
        "first.py": "def f(x):\n    return x + 1\n",
        "second.py": "def g(x):\n    return x\n",
    }
    projects.write(directory, {**helpers, "pipeline.py": many})
    names = ("use_first", *(f"s{i}" for i in range(39)))
    cache = DictCache()

    def batch(cache: DictCache | None):
        with imported_from(directory):
            requests = [StageRequest(n, resolve(f"pipeline:{n}")) for n in names]
            return fingerprint_stages(requests, cache=cache, root=directory, stats=settled())

    batch(cache)
    unpacked: list[str] = []
    real = facts._definition_from

    def counting(fields):
        found = real(fields)
        unpacked.append(found.text.partition("name='")[2].partition("'")[0])
        return found

    monkeypatch.setattr(facts, "_definition_from", counting)
    rewrite(directory, "first.py", "x + 1", "x + 2")
    after = batch(cache)

    assert cache.puts == 41
    assert unpacked == ["use_first"]
    assert after == batch(None)


def _global_names_by_disassembly(code: types.CodeType) -> frozenset[str]:
    loads = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"}
    names: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        names.update(str(i.argval) for i in dis.get_instructions(current) if i.opname in loads)
        pending.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return frozenset(names)


def test_global_names_read_from_bytecode_match_the_disassembler():
    stdlib = os.path.dirname(os.__file__)
    compared = 0
    for name in sorted(os.listdir(stdlib))[:20]:
        if not name.endswith(".py"):
            continue
        with open(os.path.join(stdlib, name), encoding="utf-8") as handle:
            code = compile(handle.read(), name, "exec")
        assert global_names(code) == _global_names_by_disassembly(code), name
        compared += 1
    assert compared > 8
    # more than 256 names: EXTENDED_ARG prefixes
    big = "def big():\n" + "".join(f"    v{i} = g{i}\n" for i in range(400)) + "    return v0\n"
    code = compile(big, "big", "exec")
    assert global_names(code) == _global_names_by_disassembly(code)
    assert len(global_names(code)) == 400


def test_the_index_of_a_module_without_lambdas_skips_expressions_and_finds_the_same():
    stdlib = os.path.dirname(os.__file__)
    compared = 0
    for name in sorted(os.listdir(stdlib)):
        if not name.endswith(".py") or compared == 12:
            continue
        with open(os.path.join(stdlib, name), "rb") as handle:
            source = handle.read()
        if b"lambda" in source:
            continue
        tree = ast.parse(source)
        found = []
        for skipped in (syntax._NO_DEFINITIONS_INSIDE, syntax._NO_STATEMENTS_INSIDE):
            definitions: dict[str, list[ast.AST]] = {}
            imports: list[syntax.ImportRef] = []
            syntax._index(tree, "", definitions, imports, skipped)
            found.append((definitions, imports))
        assert found[0] == found[1], name
        compared += bool(found[0][0])
    assert compared == 12


def test_one_walk_gives_the_dumps_with_and_without_hints():
    stdlib = os.path.dirname(os.__file__)
    compared = 0
    for name in ("dataclasses.py", "functools.py", "typing.py"):
        with open(os.path.join(stdlib, name), "rb") as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                text, bare = syntax.dump_both(node)
                assert text == syntax.dump(node)
                assert bare == syntax.dump(node, annotations=False)
                compared += text != bare
    assert compared > 40  # definitions with hints
