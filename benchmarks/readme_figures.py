"""The README's measured figures, written from `benchmarks/results/`, so they cannot go stale
silently.

    .venv/bin/python benchmarks/readme_figures.py          # rewrite the README's figures
    .venv/bin/python benchmarks/readme_figures.py --check  # list figures that differ; exit 1

A figure in README.md is marked where it stands:

    <!--fig noop.json medians.flow.wall .2f-->0.49<!--/fig-->

(result file, dotted path inside it, number format; numeric list items by position). Only the
text between the markers is rewritten. `tests/test_readme_figures.py` runs `--check`, and
checks that every result file names the commit it was measured at.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
FIGURE = re.compile(r"<!--fig (\S+) (\S+) (\S+?)-->(.*?)<!--/fig-->", re.DOTALL)


def lookup(result: Any, path: str) -> Any:
    for part in path.split("."):
        result = result[int(part)] if isinstance(result, list) else result[part]
    return result


def value(match: re.Match[str]) -> str:
    name, path, spec = match.group(1), match.group(2), match.group(3)
    result = json.loads((RESULTS / name).read_text())
    return format(lookup(result, path), spec)


def rewrite(text: str) -> str:
    return FIGURE.sub(
        lambda m: m.group(0).replace(f"-->{m.group(4)}<!--", f"-->{value(m)}<!--"), text
    )


def stale(text: str) -> list[str]:
    """`file path: README says X, the result says Y` for each figure that differs."""
    return [
        f"{m.group(1)} {m.group(2)}: README says {m.group(4)!r}, the result says {value(m)!r}"
        for m in FIGURE.finditer(text)
        if m.group(4) != value(m)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list stale figures")
    args = parser.parse_args()
    text = README.read_text()
    if args.check:
        differing = stale(text)
        print("\n".join(differing) or f"{len(FIGURE.findall(text))} figures match their results")
        sys.exit(1 if differing else 0)
    README.write_text(rewrite(text))
    print(f"{len(FIGURE.findall(text))} figures written")


if __name__ == "__main__":
    main()
