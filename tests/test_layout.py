"""The shape of ``src/``: no function too long to read in one sitting.

Issue 12's bar: no function longer than 120 lines, and at most two longer
than 80, docstrings not counted, over every module of ``src/``.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import smartdownsample

PACKAGE = Path(smartdownsample.__file__).resolve().parent
"""``src/smartdownsample`` (the installed package is the source tree: ``pip install -e``)."""

MAX_LINES = 120
"""No function longer than this."""

LONG_LINES = 80
"""A function longer than this is long; at most :data:`MAX_LONG` of them in ``src/``."""

MAX_LONG = 2
"""Long functions allowed in the whole of ``src/``."""


@dataclass(frozen=True)
class Function:
    """A function or method of ``src/`` and its length without its docstring."""

    where: str
    lines: int

    def __str__(self) -> str:
        return f"{self.where}: {self.lines} lines"


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def function_lengths(source: str, name: str) -> list[Function]:
    """Every function in ``source`` (nested ones too) with its length, docstring not counted.

    The length runs from the ``def`` line (decorators not counted) to the last line.

    Examples
    --------
    >>> code = 'def f():\\n    \"\"\"Doc,\\n    two lines.\"\"\"\\n    return 1\\n'
    >>> function_lengths(code, "m.py")
    [Function(where='m.py:1 f', lines=2)]
    """
    functions = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1 - _docstring_lines(node)
            functions.append(Function(f"{name}:{node.lineno} {node.name}", lines))
    return functions


def measure() -> list[Function]:
    """Every function of ``src/smartdownsample``."""
    functions = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE.parent).as_posix()
        functions += function_lengths(path.read_text(encoding="utf-8"), name)
    return functions


def test_no_function_over_the_limit() -> None:
    too_long = [f for f in measure() if f.lines > MAX_LINES]
    assert not too_long, "\n".join(map(str, too_long))


def test_at_most_two_long_functions() -> None:
    long = [f for f in measure() if f.lines > LONG_LINES]
    assert len(long) <= MAX_LONG, "\n".join(map(str, long))


def test_measure_leaves_out_docstrings_and_decorators() -> None:
    source = textwrap.dedent(
        '''
        import functools

        @functools.cache
        def outer(x):
            """A docstring
            of three
            lines."""
            def inner():
                return x
            return inner
        '''
    )
    assert sorted(f.lines for f in function_lengths(source, "m.py")) == [2, 4]


def test_measure_reads_every_module() -> None:
    names = {f.where.split(":")[0] for f in measure()}
    assert "smartdownsample/api.py" in names
    assert any(name.startswith("smartdownsample/cli") for name in names)
