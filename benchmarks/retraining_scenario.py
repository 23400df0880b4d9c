"""Retraining over time: successive data versions through the real flow, one project.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/retraining_scenario.py

A fresh copy of the project (code, params, its own MLflow store under mlruns/) reads the
digits as an NPZ file, and `python -m flows.retrain` runs once per version of that file:
- `initial`: 60% of the rows;
- `growth`: all rows, in another order;
- `corrupted`: growth with 30% of the new rows' labels flipped to another class;
- `shift`: growth with the new rows brightened and noised (a covariate shift);
- `unchanged`: the same file again.
For each it records the retrain decision, whether the drift test flagged the new rows, the
promotion gate's verdict and p-value, the champion, both models' scores on the shared test
rows, and how many row keys moved between splits since the previous version. Writes
`benchmarks/results/retraining_scenario.json`; the checks it must pass are printed and stored
with it: the corrupted batch is never promoted, drift is flagged on `shift` and not on
`growth`, no key ever moves, and the unchanged data is not retrained.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from projects import PROJECT_FILES, fresh_project, run_in  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "retraining_scenario.json"


def versions(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The data versions, each (x, y) of digits images [n, 8, 8, 1] with values 0..16."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.images[..., np.newaxis].astype("float32"), digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    first, new = order[: int(0.6 * len(y))], order[int(0.6 * len(y)) :]
    flipped = y.copy()
    chosen = rng.choice(new, int(0.3 * len(new)), replace=False)
    flipped[chosen] = (y[chosen] + rng.integers(1, 10, len(chosen))) % 10
    shifted = x.copy()
    noise = rng.normal(0, 1.5, shifted[new].shape)
    shifted[new] = np.clip(shifted[new] * 1.25 + 2 + noise, 0, 16).astype("float32")
    shuffled = rng.permutation(len(y))
    return {
        "initial": (x[first], y[first]),
        "growth": (x[shuffled], y[shuffled]),
        "corrupted": (x[shuffled], flipped[shuffled]),
        "shift": (shifted, y),
        "unchanged": (shifted, y),
    }


def make_project(target: Path, source: str = "npz", deterministic: bool = False) -> Path:
    """A fresh git checkout of the project's code and params (no outputs, no store)."""
    fresh_project(ROOT, target, PROJECT_FILES)
    params = (target / "params.yaml").read_text()
    if source == "npz":
        params = params.replace("  source: sklearn ", "  source: npz     ", 1)
        params = params.replace("  path: null ", "  path: data/source/digits.npz ", 1)
    if deterministic:
        params = params.replace("  deterministic: false ", "  deterministic: true  ", 1)
    (target / "params.yaml").write_text(params)
    subprocess.run(["git", "commit", "-qam", "params"], cwd=target, check=True, capture_output=True)
    return target


def run_flow(project: Path) -> tuple[str, float]:
    """`python -m flows.retrain` in the project; (its decision line, seconds)."""
    done, seconds = run_in(project, [sys.executable, "-m", "flows.retrain"])
    lines = [line for line in done.stdout.splitlines() if line.startswith("decision: ")]
    return lines[-1].removeprefix("decision: "), seconds


def _placement(manifest: dict[str, Any]) -> dict[str, str]:
    return {key: name for name in ("train", "val", "test") for key in manifest[name]["keys"]}


def moved_keys(before: dict[str, Any] | None, after: dict[str, Any]) -> int:
    """Keys present in both versions that changed split."""
    if before is None:
        return 0
    old, new = _placement(before), _placement(after)
    return sum(old[key] != new[key] for key in old.keys() & new.keys())


def record_version(
    kind: str, project: Path, decision: str, previous: dict[str, Any] | None
) -> dict[str, Any]:
    reports = project / "reports"
    registry = json.loads((reports / "registry.json").read_text())
    manifest = json.loads((project / "data/split/manifest.json").read_text())
    drift = reports / "drift.json"
    gate = registry.get("gate") or {}
    retrained = not decision.startswith("skip")
    return {
        "kind": kind,
        "rows": sum(manifest[name]["rows"] for name in ("train", "val", "test")),
        "decision": decision,
        "drift": json.loads(drift.read_text())["drift"] if drift.is_file() else False,
        "drift_reason": json.loads(drift.read_text())["reason"] if drift.is_file() else None,
        "retrained": retrained,
        "promoted": bool(registry["promote"]) and retrained,
        "p_value": gate.get("p_value") if retrained else None,
        "gate_reason": registry["reason"] if retrained else None,
        "shared_rows": gate.get("n_rows") if retrained else None,
        "keys_moved": moved_keys(previous, manifest),
        "champion_version": registry["champion"],
        "score_champion": gate.get("champion_score") if retrained else None,
        "score_challenger": gate.get("challenger_score", registry["score"]) if retrained else None,
    }


def checks(rows: list[dict[str, Any]]) -> dict[str, bool]:
    by_kind = {row["kind"]: row for row in rows}
    return {
        "corrupted never promoted": not by_kind["corrupted"]["promoted"],
        "drift flagged on shift": by_kind["shift"]["drift"],
        "no drift on growth": not by_kind["growth"]["drift"],
        "no key moved": all(row["keys_moved"] == 0 for row in rows),
        "unchanged data not retrained": not by_kind["unchanged"]["retrained"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scenario-") as folder:
        project = make_project(Path(folder) / "project")
        previous = None
        for kind, (x, y) in versions(args.seed).items():
            np.savez(project / "data/source/digits.npz", x=x, y=y)
            (project / "reports/drift.json").unlink(missing_ok=True)
            decision, seconds = run_flow(project)
            rows.append(
                {**record_version(kind, project, decision, previous), "seconds": round(seconds, 1)}
            )
            previous = json.loads((project / "data/split/manifest.json").read_text())
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "versions": rows,
        "checks": checks(rows),
        "seconds": round(time.perf_counter() - started, 1),
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["checks"], indent=2))
    if not all(result["checks"].values()):
        sys.exit("a scenario check failed")


if __name__ == "__main__":
    main()
