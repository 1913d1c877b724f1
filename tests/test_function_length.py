"""Every function of the package is short enough to read at once: at most 60 lines of
code, docstring, blank lines and comments aside."""

from __future__ import annotations

import ast
from pathlib import Path

import nbreplica

PACKAGE_ROOT = Path(nbreplica.__file__).parent
MAX_LINES = 60


def code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef, source: list[str]) -> int:
    """Lines of ``function`` that hold code: its docstring, blank lines and comment
    lines left out."""
    body = function.body
    has_docstring = (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                     and isinstance(body[0].value.value, str))
    docstring = range(body[0].lineno, body[0].end_lineno + 1) if has_docstring else range(0)
    return sum(
        1 for number in range(function.lineno, function.end_lineno + 1)
        if number not in docstring
        and source[number - 1].strip() and not source[number - 1].strip().startswith("#")
    )


def long_functions(path: Path) -> list[str]:
    source = path.read_text().splitlines()
    return [
        f"{path.relative_to(PACKAGE_ROOT.parent)}:{node.lineno} {node.name} "
        f"({code_lines(node, source)} lines)"
        for node in ast.walk(ast.parse("\n".join(source)))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and code_lines(node, source) > MAX_LINES
    ]


def test_no_function_is_longer_than_sixty_lines_of_code():
    assert [entry for path in sorted(PACKAGE_ROOT.rglob("*.py"))
            for entry in long_functions(path)] == []


def test_the_count_leaves_out_docstrings_comments_and_blank_lines():
    source = ('def f():\n    """Doc.\n\n    More."""\n    # why\n\n    a = 1\n'
              '    return a\n')
    function = ast.parse(source).body[0]
    assert code_lines(function, source.splitlines()) == 3  # def, assignment, return
