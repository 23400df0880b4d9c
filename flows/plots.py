"""`make plots`: DVC's plots as one offline HTML page.

    python -m flows.plots [--out dvc_plots]

`dvc plots show` writes a page that loads its chart library (Vega) from a CDN, so offline
its interactive plots are blank. This asks DVC for the same plots (`dvc plots show --json`:
the Vega-Lite specs with their data, and the image plots), renders each spec to SVG with
vl-convert (Vega bundled, no network) and writes `<out>/index.html` with the SVGs and the
images inline: one file that opens anywhere.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


def dvc_plots() -> dict[str, list[dict[str, Any]]]:
    """What `dvc plots show --json` gives: per plot, its rendered specs or images."""
    done = subprocess.run(
        ["dvc", "plots", "show", "--json"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"dvc plots show failed: {last} (run the pipeline first: make run)")
    return dict(json.loads(done.stdout)["data"])


def render(name: str, item: dict[str, Any]) -> str:
    """One plot as HTML: a Vega-Lite spec as inline SVG, an image as a data URI."""
    import vl_convert

    title = f"<h2>{html.escape(name)}</h2>"
    if item.get("type") == "image":
        data = base64.b64encode(Path(item["url"]).read_bytes()).decode()
        return f'{title}<img src="data:image/png;base64,{data}" alt="{html.escape(name)}">'
    return title + vl_convert.vegalite_to_svg(item["content"])


def write_page(plots: dict[str, list[dict[str, Any]]], out: Path) -> Path:
    body = "\n".join(render(name, item) for name, items in plots.items() for item in items)
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>DVC plots</title>'
        "<style>body{font-family:sans-serif;margin:2em}img,svg{max-width:100%}</style>"
        f"</head><body><h1>DVC plots (workspace)</h1>\n{body}\n</body></html>\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.html").write_text(page)
    return out / "index.html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dvc_plots"))
    args = parser.parse_args()
    plots = dvc_plots()
    path = write_page(plots, args.out)
    print(f"{len(plots)} plots, offline: {path}")


if __name__ == "__main__":
    run_entry("flows.plots")
