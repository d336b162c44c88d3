"""docs/conventions.md: every statement cites a test, and every cited test exists."""

from __future__ import annotations

import ast
import re

from common.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "conventions.md"
CITATION = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_cited_test_exists() -> None:
    citations = CITATION.findall(DOC.read_text())
    assert len(citations) >= 15, "the conventions page cites its tests"
    missing = []
    for path, name in citations:
        file = REPO_ROOT / path
        tree = ast.parse(file.read_text()) if file.is_file() else ast.Module(body=[], type_ignores=[])
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        if name not in functions:
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/conventions.md cites tests that do not exist: {missing}"


def test_every_bullet_cites_a_test() -> None:
    bullets = [b for b in re.split(r"\n(?=- )", DOC.read_text()) if b.startswith("- ")]
    uncited = [b.splitlines()[0] for b in bullets if not CITATION.search(b)]
    assert not uncited, f"statements without a test: {uncited}"
