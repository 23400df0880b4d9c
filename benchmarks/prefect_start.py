"""How long Prefect's server takes to answer its health check on a new PREFECT_HOME, started
as every command starts it: with a new database (Prefect runs every migration and registers
its block types) against one copied from the environment's template (`tasks.databases`,
built by `make install`: migrated, block types registered), alternating, in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/prefect_start.py [--rounds 3]

Writes `benchmarks/results/prefect_start.json`: each start's seconds, the medians, their
ratio and the commit measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from projects import measured_at  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from flows.server import prefect_server  # noqa: E402
from tasks import databases  # noqa: E402
from tasks.databases import build  # noqa: E402
from tasks.runtime import free_port  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "prefect_start.json"


def start(seeded: bool) -> float:
    """Seconds from starting the server as every command does (`flows.server.prefect_server`)
    to a healthy API, on a new PREFECT_HOME: with the template, or with none to copy."""
    templates = databases.TEMPLATES
    with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
        os.environ["PREFECT_HOME"] = home
        if not seeded:
            databases.TEMPLATES = Path(home) / "no-templates"
        try:
            began = time.perf_counter()
            with prefect_server("127.0.0.1", free_port()):
                return time.perf_counter() - began
        finally:
            databases.TEMPLATES = templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    build("prefect")
    seconds: dict[str, list[float]] = {"new_database": [], "copied_template": []}
    for _ in range(args.rounds):
        seconds["new_database"].append(round(start(seeded=False), 2))
        seconds["copied_template"].append(round(start(seeded=True), 2))
        print(seconds, flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "rounds": args.rounds,
        "seconds": seconds,
        "medians": medians,
        "ratio": round(medians["copied_template"] / medians["new_database"], 3),
        "commit": measured_at(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
