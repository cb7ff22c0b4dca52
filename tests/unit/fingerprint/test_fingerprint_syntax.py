"""Normalised source: cosmetics vanish, behaviour stays; definitions are found by qualified name."""

from __future__ import annotations

import textwrap

from pivot.fingerprint.syntax import dump, name_chains, parse_module


def dumped(source: str, qualname: str) -> str:
    parsed = parse_module(textwrap.dedent(source).encode(), "m.py")
    (node,) = parsed.definitions[qualname]
    return dump(node)


def test_comments_docstrings_blank_lines_and_layout_do_not_count():
    plain = """
        def f(a, b=(1, 2)):
            return g(a, b)
    """
    styled = '''


        def f(a,
              b=( 1, 2 )):  # comment
            """Doc."""
            pass
            "a bare string"
            return g(
                a, b,
            )
    '''
    assert dumped(plain, "f") == dumped(styled, "f")


def test_behaviour_counts():
    assert dumped("def f(a):\n    return a + 1\n", "f") != dumped(
        "def f(a):\n    return a + 2\n", "f"
    )
    assert dumped("def f(a):\n    return 1\n", "f") != dumped("def f(a):\n    return 1.0\n", "f")


def test_nested_definitions_have_python_qualified_names():
    parsed = parse_module(
        b"class C:\n    def m(self):\n        def inner():\n            return lambda: 1\n        return inner\n",
        "m.py",
    )
    assert set(parsed.definitions) == {
        "C",
        "C.m",
        "C.m.<locals>.inner",
        "C.m.<locals>.inner.<locals>.<lambda>",
    }


def test_name_chains_are_longest_reads_and_hints_read_strings():
    parsed = parse_module(
        b"def f(x: 'mod.Kind') -> Annotated['T', Dep('a.csv')]:\n    return a.b.c(x).d\n", "m.py"
    )
    (node,) = parsed.definitions["f"]
    assert name_chains(node.body) == [("a", "b", "c"), ("x",)]
    hints = name_chains([node.args.args[0].annotation, node.returns], annotation=True)
    assert hints == [("mod", "Kind"), ("Annotated",), ("T",), ("Dep",)]
