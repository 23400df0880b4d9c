"""A full run against `make tracking-server` (MLflow server, SQLite, proxied artifacts) and
against the project's own SQLite store, side by side in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/tracking_server.py [--rounds 2]

Each round runs `python -m flows.retrain` on the default params in two fresh project copies,
alternating: one with its own store, one with MLFLOW_TRACKING_URI pointing at a server
started for the round (`make tracking-server`, on a free port, with its own directory). The
server's access log counts the REST calls of the run, by endpoint; the artifact store's and
the database's size give the bytes the server keeps per run, and the project's DVC cache the
bytes a `dvc push` sends; Prefect's own record (task runs in the project's .prefect/prefect.db)
gives the time per step. The served copy then runs once more with nothing to do: the calls
of such a run, what an hourly schedule on unchanged data costs the server. Writes
`benchmarks/results/tracking_server.json`: wall times, their ratio, calls per run (total and
per endpoint), bytes, seconds per step, and the commit.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from projects import PROJECT_FILES, fresh_project, measured_at, run_in  # noqa: E402

from tasks.runtime import free_port, server_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tracking_server.json"
DATA_STEPS = ("ingest", "validate", "clean", "split", "standardize")
CALL = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/[^ ?"]*)')


@contextmanager
def tracking_server(folder: Path) -> Iterator[tuple[str, Path]]:
    """`make tracking-server` storing in folder, for the block: its URI and its log file."""
    port, log = free_port(), folder / "server.log"
    command = ["make", "--no-print-directory", "-C", str(ROOT), "tracking-server"]
    uri = f"http://127.0.0.1:{port}"
    failed = f"the tracking server did not start (its output: {log})"
    with (
        log.open("wb") as out,
        server_process(
            [*command, f"PORT={port}", f"TRACKING_DIR={folder}"],
            f"{uri}/health",
            failed,
            output=out,
        ),
    ):
        yield uri, log


def calls(log: Path) -> collections.Counter[str]:
    found = (CALL.search(line) for line in log.read_text().splitlines())
    counted = (f"{m[1]} {m[2]}" for m in found if m and not m[2].endswith("/health"))
    return collections.Counter(counted)


def size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def database_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*.db"))


def step_seconds(project: Path) -> dict[str, float]:
    """Each step's run time as the project's Prefect database recorded it (task runs)."""
    epoch = datetime(1970, 1, 1)  # SQLite keeps an interval as a datetime after the epoch
    with sqlite3.connect(project / ".prefect" / "prefect.db") as db:
        rows = db.execute("SELECT name, total_run_time FROM task_run ORDER BY start_time")
        seconds: dict[str, float] = collections.defaultdict(float)
        for name, value in rows:  # a step run more than once (a trial each) counts in total
            seconds[re.sub(r"-[0-9a-f]{3}$", "", name)] += (
                datetime.fromisoformat(value) - epoch
            ).total_seconds()
        return {name: round(total, 2) for name, total in seconds.items()}


def one_round(folder: Path) -> dict[str, object]:
    local = fresh_project(ROOT, folder / "local", PROJECT_FILES)
    seconds_local = run_in(local, [sys.executable, "-m", "flows.retrain"])[1]
    served = fresh_project(ROOT, folder / "served", PROJECT_FILES)
    (folder / "server").mkdir()
    database = partial(database_bytes, folder / "server")
    with tracking_server(folder / "server") as (uri, log):
        extra = {"MLFLOW_TRACKING_URI": uri}
        empty = database()  # the schema the server created at start
        seconds_server = run_in(served, [sys.executable, "-m", "flows.retrain"], extra)[1]
        counted, steps, after_run = calls(log), step_seconds(served), database()
        artifacts = size(folder / "server" / "artifacts")
        # the same command again, with nothing to do: what an hourly schedule mostly costs
        seconds_noop = run_in(served, [sys.executable, "-m", "flows.retrain"], extra)[1]
        noop = calls(log) - counted
        noop_bytes = database() - after_run + size(folder / "server" / "artifacts") - artifacts
    return {
        "local_s": round(seconds_local, 1),
        "server_s": round(seconds_server, 1),
        "calls": sum(counted.values()),
        "calls_by_endpoint": dict(counted.most_common()),
        "noop_s": round(seconds_noop, 2),
        "noop_calls": sum(noop.values()),
        "noop_calls_by_endpoint": dict(noop.most_common()),
        "noop_bytes": noop_bytes,
        "artifact_bytes": artifacts,
        "database_bytes": after_run - empty,
        "local_artifact_bytes": size(local / "mlruns" / "artifacts"),
        "dvc_cache_bytes": size(served / ".dvc" / "cache"),
        "step_seconds": steps,
    }


def at_scale(result: dict[str, object], models: int = 100) -> dict[str, object]:
    """What the server takes in a day when `models` projects run hourly and each one's data
    changes once a day (1 retrain and 23 runs with nothing to do per model): the figures
    above times the count, nothing else assumed."""
    retrains, noops = models, models * 23
    per_run: dict[str, float] = result["megabytes_per_run"]  # type: ignore[assignment]
    calls = retrains * int(result["calls_per_run"]) + noops * int(result["calls_per_noop_run"])  # type: ignore[call-overload]
    return {
        "models": models,
        "runs_per_day": retrains + noops,
        "calls_per_day": calls,
        "calls_per_second": round(calls / 86_400, 2),
        "tracking_gigabytes_per_day": round(
            retrains * (per_run["artifact_bytes"] + per_run["database_bytes"]) / 1000, 2
        ),
        "dvc_gigabytes_per_day": round(retrains * per_run["dvc_cache_bytes"] / 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="tracking-server-") as folder:
        for number in range(args.rounds):
            rounds.append(one_round(Path(folder) / str(number)))
            shown = {k: v for k, v in rounds[-1].items() if "by_endpoint" not in k}
            print(shown, flush=True)
    medians = {k: statistics.median(r[k] for r in rounds) for k in ("local_s", "server_s")}  # type: ignore[misc]
    commit = measured_at()
    result = {
        "rounds": rounds,
        "medians": medians,
        "ratio": round(medians["server_s"] / medians["local_s"], 3),
        "calls_per_run": rounds[-1]["calls"],
        "calls_per_noop_run": rounds[-1]["noop_calls"],
        "megabytes_per_run": {
            key: round(int(rounds[-1][key]) / 1e6, 2)  # type: ignore[call-overload]
            for key in ("artifact_bytes", "database_bytes", "dvc_cache_bytes")
        },
        "step_seconds": rounds[-1]["step_seconds"],
        "data_steps_s": round(sum(rounds[-1]["step_seconds"].get(s, 0.0) for s in DATA_STEPS), 2),  # type: ignore[attr-defined]
        "commit": commit,
    }
    result["at_scale"] = at_scale(result)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))


if __name__ == "__main__":
    main()
