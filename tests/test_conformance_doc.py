"""docs/CONFORMANCE.md stays true: every test it names exists and names the article its
row enforces, and every row that claims a behaviour names a test (issue 17).

The table is how an auditor goes from an article to the code and back; a renamed or
deleted test, or one whose docstring lost its article, would leave a row that points at
nothing, so this test reads the table and checks each reference against the test files'
syntax trees (it imports nothing of them)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "CONFORMANCE.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
ARTICLE = re.compile(r"\d{3} (?:att\.\d+ )?(?:art\.\d+(?:\(\d+\))?|§\d+(?:\.\d+)?)")


def _rows() -> list[list[str]]:
    """The obligation rows: | id | obligation | article | status | behaviour | tests |."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 6 and re.fullmatch(r"\d+\.\d+", cells[0]):
            rows.append(cells)
    return rows


@cache
def _docstrings(path: str) -> dict[str, str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = " ".join((ast.get_docstring(node) or "").split())
    return found


def test_the_table_covers_every_section_of_the_requirements() -> None:
    rows = _rows()
    assert len(rows) >= 40
    assert {r[0].split(".")[0] for r in rows} == {str(n) for n in range(1, 10)}
    assert len({r[0] for r in rows}) == len(rows), "an obligation id twice"


def test_every_named_test_exists_and_names_the_article_of_its_row() -> None:
    wrong = []
    for ident, _, articles, _, _, tests in _rows():
        named = ARTICLE.findall(articles)
        assert named, f"row {ident} names no article"
        for path, name in REF.findall(tests):
            if not (ROOT / path).exists():
                wrong.append(f"{ident}: {path} does not exist")
                continue
            doc = _docstrings(path).get(name)
            if doc is None:
                wrong.append(f"{ident}: no test {name} in {path}")
            elif not any(a in doc for a in named):
                wrong.append(f"{ident}: {path}::{name} names none of {named}")
    assert not wrong, "\n".join(wrong)


def test_a_row_that_claims_a_behaviour_names_its_tests() -> None:
    for ident, _, _, status, _, tests in _rows():
        assert status in {"met", "partly", "cannot", "outside"}, f"row {ident}: status {status}"
        if status in {"met", "partly"}:
            assert REF.search(tests), f"row {ident} is {status} but names no test"
