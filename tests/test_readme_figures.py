"""The README's measured figures match their result files, and every result names the commit
it was measured at (`benchmarks/readme_figures.py` writes the figures)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import readme_figures  # noqa: E402


def _has_commit(result: Any) -> bool:
    if isinstance(result, dict):
        return "commit" in result or any(_has_commit(v) for v in result.values())
    return isinstance(result, list) and any(_has_commit(v) for v in result)


def test_every_readme_figure_equals_its_result_file() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(readme_figures.FIGURE.findall(text)) >= 20, "the figures are marked"
    assert readme_figures.stale(text) == []


def test_a_changed_result_is_caught(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    figure = readme_figures.FIGURE.search(text)
    assert figure is not None
    changed = text.replace(
        figure.group(0), figure.group(0).replace(f"-->{figure.group(4)}<", "-->9.99<"), 1
    )
    assert len(readme_figures.stale(changed)) == 1
    assert readme_figures.stale(readme_figures.rewrite(changed)) == []


def test_every_result_names_its_commit() -> None:
    results = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert results
    assert [p.name for p in results if not _has_commit(json.loads(p.read_text()))] == []
