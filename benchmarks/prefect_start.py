"""How long `prefect server start` takes to answer its health check on a new PREFECT_HOME:
with a new database (Prefect runs every migration) against one copied from the environment's
template (`tasks.databases`, built by `make install`), alternating, in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/prefect_start.py [--rounds 3]

Writes `benchmarks/results/prefect_start.json`: each start's seconds, the medians, their
ratio and the commit measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from projects import measured_at  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from flows.server import free_port  # noqa: E402
from tasks.databases import build  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "prefect_start.json"


def start(seeded: bool) -> float:
    """Seconds from `prefect server start` to a healthy API, on a new PREFECT_HOME."""
    with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
        if seeded:
            shutil.copyfile(build("prefect"), Path(home) / "prefect.db")
        port = free_port()
        command = [sys.executable, "-m", "prefect", "server", "start", "--port", str(port)]
        began = time.perf_counter()
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1"],
            env={**os.environ, "PREFECT_HOME": home},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                        return time.perf_counter() - began
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit("prefect server start failed") from None
                    time.sleep(0.05)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()


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
