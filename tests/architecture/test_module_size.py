"""No module in ``src`` is over ~500 lines without saying why (issue 14).

A module past :data:`LIMIT` lines must give the reason in its docstring, on a line
that starts with ``Size:`` — for example a table of wire models that reads best in
one place. Everything else is split by concern.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "aiolens"
LIMIT = 500


def _oversized() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if len(p.read_text().splitlines()) > LIMIT]


def _size_reason(path: Path) -> str | None:
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path))) or ""
    for line in doc.splitlines():
        if line.strip().startswith("Size:") and len(line.strip()) > len("Size:") + 10:
            return line.strip()
    return None


@pytest.mark.parametrize("path", _oversized(), ids=lambda p: str(p.relative_to(SRC)))
def test_a_large_module_says_why(path: Path) -> None:
    assert _size_reason(path), (
        f"{path.relative_to(SRC)} has more than {LIMIT} lines: split it by concern, "
        "or give the reason in its docstring on a line starting 'Size:'"
    )


def test_the_reason_is_read_from_the_docstring(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Models.\n\nSize: one table of wire models, read top to bottom."""\n')
    assert _size_reason(module)
    module.write_text('"""Models."""\n# Size: a comment is not the docstring\n')
    assert _size_reason(module) is None
