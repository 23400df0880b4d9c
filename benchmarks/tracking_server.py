"""A full run against `make tracking-server` (MLflow server, SQLite, proxied artifacts) and
against the project's own SQLite store, side by side in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/tracking_server.py [--rounds 2]

Each round runs `python -m flows.retrain` on the default params in two fresh project copies,
alternating: one with its own store, one with MLFLOW_TRACKING_URI pointing at a server
started for the round (`make tracking-server`, on a free port, with its own directory). The
server's access log counts the REST calls of the run, by endpoint; the artifact store's size
gives the bytes kept per run. Writes `benchmarks/results/tracking_server.json`: wall times,
their ratio, calls per run (total and per endpoint), artifact bytes, and the commit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from projects import PROJECT_FILES, fresh_project, measured_at, run_in  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tracking_server.json"
CALL = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/[^ ?"]*)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port, log = free_port(), folder / "server.log"
    command = ["make", "--no-print-directory", "-C", str(ROOT), "tracking-server"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, f"PORT={port}", f"TRACKING_DIR={folder}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return server, uri, log
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the tracking server did not start:\n{log.read_text()[-2000:]}")


def calls(log: Path) -> collections.Counter[str]:
    found = (CALL.search(line) for line in log.read_text().splitlines())
    counted = (f"{m[1]} {m[2]}" for m in found if m and not m[2].endswith("/health"))
    return collections.Counter(counted)


def size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def one_round(folder: Path) -> dict[str, object]:
    local = fresh_project(ROOT, folder / "local", PROJECT_FILES)
    seconds_local = run_in(local, [sys.executable, "-m", "flows.retrain"])[1]
    served = fresh_project(ROOT, folder / "served", PROJECT_FILES)
    (folder / "server").mkdir()
    server, uri, log = start_server(folder / "server")
    try:
        extra = {"MLFLOW_TRACKING_URI": uri}
        seconds_server = run_in(served, [sys.executable, "-m", "flows.retrain"], extra)[1]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    counted = calls(log)
    return {
        "local_s": round(seconds_local, 1),
        "server_s": round(seconds_server, 1),
        "calls": sum(counted.values()),
        "calls_by_endpoint": dict(counted.most_common()),
        "artifact_bytes": size(folder / "server" / "artifacts"),
        "local_artifact_bytes": size(local / "mlruns" / "artifacts"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="tracking-server-") as folder:
        for number in range(args.rounds):
            rounds.append(one_round(Path(folder) / str(number)))
            print({k: v for k, v in rounds[-1].items() if k != "calls_by_endpoint"}, flush=True)
    medians = {k: statistics.median(r[k] for r in rounds) for k in ("local_s", "server_s")}  # type: ignore[misc]
    commit = measured_at()
    result = {
        "rounds": rounds,
        "medians": medians,
        "ratio": round(medians["server_s"] / medians["local_s"], 3),
        "calls_per_run": rounds[-1]["calls"],
        "commit": commit,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))


if __name__ == "__main__":
    main()
