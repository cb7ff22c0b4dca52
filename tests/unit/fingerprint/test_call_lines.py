"""A large module's registration-like lines are read without parsing them
(`syntax.statement_parts`): what importing the module uses must be exactly what parsing the
whole file says, wherever such a line stands (in a string, in brackets, after a backslash), and
a file that does not parse must still fail."""

from __future__ import annotations

import ast

import pytest

from pivot.fingerprint import facts, syntax

FILLER = "".join(f"pipeline.register(stages.s{i:04d}, name='s{i:04d}')\n" for i in range(800))


def _parts(source: str) -> list[ast.stmt | syntax.SurfaceNames]:
    data = source.encode()
    assert len(data) > syntax._PART_BYTES  # read a part at a time, where call lines are found
    return [s for part in syntax.statement_parts(data, "big.py") for s in part]


def _through_parts(source: str) -> tuple[facts.SurfaceFacts, ...]:
    return facts.module_uses(_parts(source))


def _whole(source: str) -> tuple[facts.SurfaceFacts, ...]:
    return facts.module_uses(ast.parse(source).body)


def _same_statements(source: str) -> None:
    """Each statement read a part at a time is the one parsed from the whole file, or, for a
    call line, what parsing it says it uses."""
    read, whole = _parts(source), ast.parse(source).body
    assert len(read) == len(whole)
    for statement, expected in zip(read, whole):
        if isinstance(statement, syntax.SurfaceNames):
            assert statement == syntax.surface_names(expected)
        else:
            assert syntax.dump(statement) == syntax.dump(expected)


@pytest.mark.parametrize(
    "middle",
    [
        # plain call lines, with every kind of argument the fast reading takes
        'pipeline.register(stages.a, name="a", cache=None, jobs=2, retry=True, note="x, y")\n',
        "print(x)\nrun(a.b.c, 0, '')\n",
        # a call whose callee runs code given by name or text: read as parsed (dynamic)
        'importlib.import_module("plugins")\nframe.query("x > 1")\n',
        # call lines that are not statements: inside a string, brackets, after a backslash
        'TEXT = """\npipeline.register(stages.hidden)\n"""\n',
        "NAMES = [\npipeline.register(stages.listed),\n]\n",
        "VALUES = (\nf(a)\n)\n",
        "total = 1 + \\\nf(a)\n",
        # lines the fast reading leaves to the parser
        "f(*args)\nf(**options)\nf(a)  # comment\nf(a,)\nf(-1)\nf(b'x')\nf(a=1, b=2)\n",
        "f(None.x)\nf(lambda_, not_)\nx.y(z) ; w()\nf(a=1, a=2)\n",
        "if ready:\n    f(a)\nf(a)\nclass C:\n    f(b)\n",
        "@decorate\ndef g():\n    return f(a)\n",
    ],
)
def test_the_uses_read_a_part_at_a_time_are_those_of_the_whole_file(middle: str) -> None:
    source = FILLER + middle + FILLER

    assert _through_parts(source) == _whole(source)
    _same_statements(source)


@pytest.mark.parametrize(
    "line",
    [
        "f(a=1, b)\n",  # a positional argument after a keyword one
        "f(if=1)\n",  # a keyword as a keyword argument
        "f(lambda)\n",  # a keyword as a name
        "class.f(a)\n",
        "f(a.None)\n",
        "f(a, 01)\n",  # a leading zero
    ],
)
def test_a_line_that_does_not_parse_still_fails(line: str) -> None:
    source = FILLER + line + FILLER
    with pytest.raises(SyntaxError):
        ast.parse(source)

    with pytest.raises(SyntaxError):
        _through_parts(source)


def test_a_call_line_is_read_as_parsing_it_reads_it() -> None:
    line = 'pipeline.register(stages.train, name="train", params=Params, n=3, on=False)'
    read = syntax._call_line(line + "\n")

    assert read == syntax.surface_names(ast.parse(line).body[0])
    assert read is not None and read.reads == [("stages", "train"), ("Params",)]
    assert syntax._call_line("eval(text)\n") is None  # runs code given as text
    assert syntax._call_line("f(a) + 1\n") is None
