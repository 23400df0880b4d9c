"""Benchmark the data steps against a bare pandas + scikit-learn script, in one run.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/data_pipeline.py [--rows 1000000]
    flock /tmp/heavy.lock .venv/bin/python benchmarks/data_pipeline.py --case mixed \
        [--rows N ...] [--rounds 3]

Generates a table (numeric and categorical columns, with nulls and duplicate rows), then
measures, each in a fresh child process: (a) our ingest -> validate -> clean -> split ->
standardize through the real `run(params)` adapters in a temporary project, and (b) a bare
script doing the same de-duplication, dropping, splitting, imputing, scaling and encoding
(and writing its outputs). Prints and writes `benchmarks/results/data_pipeline.json`: both
times, their ratio (target <= 1.5), our absolute time (target <= 60 s), our peak memory
(target <= 4 GiB), and our peak memory at a quarter, half and all of the rows (growth
should be linear).

`--case mixed` writes a CSV as files really come (numbers with `?` markers and blank
cells, a column of numbers with thousands separators, padded text, padded labels, 1%
duplicate rows) and times ingest -> validate -> clean -> split (CSV sniffing, missing
markers, stripping, the contract checked at ingest, validate, coercion, the re-check of
the cleaned data, the keyed split) against a bare script that reads the same file with the
same pandas options, does the same cleaning and a random split, and checks nothing. The two
take turns, each in a fresh child process, for `--rounds` rounds; medians are reported. Both
sides import their libraries before the clock starts; Great Expectations' import is timed
apart. Writes `benchmarks/results/data_pipeline_mixed.json` (goal: ratio <= 1.2) with the
commit measured.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NUMERIC, CATEGORICAL = 15, 5
TARGETS = {"ratio": 1.5, "seconds": 60.0, "peak_gib": 4.0}
MIXED_TARGETS = {"ratio": 1.2}
MIXED_ROWS = "30000 300000 1000000"  # each size in its own pair of child processes
MIXED_NUMERIC, MIXED_TEXT = 8, 5
MARKERS = ["", "?", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>"]


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    """rows x 20 features + label: floats and ints, categories, 2% nulls, 1% duplicate rows."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(NUMERIC):
        values = rng.normal(i, 1 + i, rows)
        values[rng.random(rows) < 0.02] = np.nan
        data[f"num_{i}"] = values
    for i in range(CATEGORICAL):
        values = rng.choice(np.array([f"c{i}_{k}" for k in range(8)], dtype=object), rows)
        values[rng.random(rows) < 0.02] = None
        data[f"cat_{i}"] = pd.array(values, dtype="str")
    data["label"] = rng.integers(0, 5, rows)
    frame = pd.DataFrame(data)
    pairs = rng.choice(rows, 2 * (rows // 100), replace=False).reshape(2, -1)
    frame.iloc[pairs[0]] = frame.iloc[pairs[1]].to_numpy()  # 1% of rows are exact duplicates
    return frame


def ours(source: str, workdir: str) -> None:
    """(a) The pipeline's own adapters, in a temporary project."""
    import os

    from tasks import clean, ingest, split, standardize, validate
    from tasks.config import parse_params
    from tasks.runtime import configure

    os.chdir(workdir)  # a throw-away project: data/, reports/, expectations/ land here
    configure()
    params = parse_params(
        {
            "ingest": {"source": "parquet", "path": source},
            "validate": {"labels": None, "value_range": None, "max_null_fraction": 0.05},
            "clean": {"missing": "mean", "drop_duplicates": True},
            "standardize": {"scaler": "standard", "categorical": "onehot"},
        }
    )
    start = time.perf_counter()
    for step in (ingest, validate, clean, split, standardize):
        began = time.perf_counter()
        step.run(params)  # type: ignore[attr-defined]
        print(f"  {step.__name__}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
    _report(time.perf_counter() - start)


def bare(source: str, workdir: str) -> None:
    """(b) The same cleaning, splitting, scaling and encoding in plain pandas + scikit-learn."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    start = time.perf_counter()
    frame = pd.read_parquet(source)
    frame = frame[frame["label"].notna()].drop_duplicates().reset_index(drop=True)
    frame.to_parquet(Path(workdir) / "clean.parquet")
    rest, test = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["label"])
    train, val = train_test_split(rest, test_size=0.125, random_state=42, stratify=rest["label"])
    numeric = [c for c in frame.columns if c.startswith("num_")]
    categorical = [c for c in frame.columns if c.startswith("cat_")]
    transformer = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
        ]
    ).fit(train.drop(columns="label"))
    for name, part in (("train", train), ("val", val), ("test", test)):
        part.to_parquet(Path(workdir) / f"{name}.parquet")
        x = transformer.transform(part.drop(columns="label")).astype("float32")
        np.savez(Path(workdir) / f"{name}.npz", x=x, y=part["label"].to_numpy())
    _report(time.perf_counter() - start)


def generate_mixed(rows: int, seed: int = 0) -> pd.DataFrame:
    """The cells of a CSV as files spell them: `?` and ` ?` markers and blank cells in
    numeric columns, "1,234.5" numbers, padded categories and labels, 1% duplicate rows."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(MIXED_NUMERIC):
        values = rng.normal(i, 1 + i, rows).round(3).astype(str).astype(object)
        draw = rng.random(rows)
        values[draw < 0.02] = "?"
        values[(draw >= 0.02) & (draw < 0.03)] = " ?"
        values[(draw >= 0.03) & (draw < 0.04)] = " "
        data[f"num_{i}"] = values
    amounts = np.array([f"{v:,.2f}" for v in rng.uniform(0, 50_000, rows)], dtype=object)
    amounts[rng.random(rows) < 0.02] = ""
    data["amount"] = amounts
    for i in range(MIXED_TEXT):
        choices = np.array([f" c{i}_{k}" if k % 2 else f"c{i}_{k}  " for k in range(8)])
        values = rng.choice(choices, rows).astype(object)
        draw = rng.random(rows)
        values[draw < 0.02] = " ?"
        values[(draw >= 0.02) & (draw < 0.03)] = ""
        data[f"cat_{i}"] = values
    data["label"] = rng.choice(np.array([" yes", "no ", " maybe "], dtype=object), rows)
    frame = pd.DataFrame(data)
    pairs = rng.choice(rows, 2 * (rows // 100), replace=False).reshape(2, -1)
    frame.iloc[pairs[0]] = frame.iloc[pairs[1]].to_numpy()
    return frame


def ours_mixed(source: str, workdir: str) -> None:
    """(a) ingest -> validate -> clean -> split through the adapters, the CSV read as `auto`."""
    import os

    from tasks import clean, ingest, split, validate
    from tasks.config import parse_params
    from tasks.runtime import configure

    os.chdir(workdir)
    configure()
    began = time.perf_counter()
    import great_expectations  # noqa: F401  (timed apart, as the bare side's imports are)

    imported = time.perf_counter() - began
    params = parse_params(
        {
            "ingest": {"source": "csv", "path": source},
            "validate": {"labels": None, "value_range": None, "max_null_fraction": 0.1},
            "clean": {"missing": "median", "drop_duplicates": True},
        }
    )
    start = time.perf_counter()
    for step in (ingest, validate, clean, split):
        began = time.perf_counter()
        step.run(params)  # type: ignore[attr-defined]
        print(f"  {step.__name__}: {time.perf_counter() - began:.2f} s", file=sys.stderr)
    _report(time.perf_counter() - start, import_seconds=round(imported, 2))


def bare_mixed(source: str, workdir: str) -> None:
    """(b) The same reading options and cleaning by hand, and a random 70/10/20 split."""
    from sklearn.model_selection import train_test_split

    start = time.perf_counter()
    frame = pd.read_csv(
        source, na_values=MARKERS, keep_default_na=False, skipinitialspace=True, low_memory=False
    )
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c])]
    stripped = {c: frame[c].str.strip() for c in text}
    frame = frame.assign(**{c: v.mask(v.isin(MARKERS)) for c, v in stripped.items()})
    frame["amount"] = pd.to_numeric(frame["amount"].str.replace(",", "", regex=False))
    frame = frame[frame["label"].notna()].drop_duplicates().reset_index(drop=True)
    frame.to_parquet(Path(workdir) / "clean.parquet")
    rest, test = train_test_split(frame, test_size=0.2, random_state=42)
    train, val = train_test_split(rest, test_size=0.125, random_state=42)
    for name, part in (("train", train), ("val", val), ("test", test)):
        part.to_parquet(Path(workdir) / f"{name}.parquet")
    _report(time.perf_counter() - start)


def _report(seconds: float, **extra: float) -> None:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = {"seconds": round(seconds, 2), "peak_gib": round(peak_kib / 2**20, 3), **extra}
    print(json.dumps(result))


def measure(kind: str, source: Path) -> dict[str, float]:
    """Run one side in a fresh child process; return its time and peak memory."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as workdir:
        code = f"from benchmarks.data_pipeline import {kind}; {kind}({str(source)!r}, {workdir!r})"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    sys.stderr.write(done.stderr[-2000:] if kind.startswith("ours") else "")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _commit() -> str:
    """The commit measured, marked when tasks/ differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return done.stdout

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "tasks") else ""
    return git("rev-parse", "--short", "HEAD").strip() + dirty


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run of median time (an odd number of runs)."""
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def run_mixed(rows: int, rounds: int) -> dict[str, Any]:
    """The mixed-type CSV case: ours against the bare script, one child process each, taking
    turns for `rounds` rounds (the machine's noise hits both sides alike); medians."""
    bases, mines = [], []
    with tempfile.TemporaryDirectory(prefix="bench-mixed-") as folder:
        source = Path(folder) / "mixed.csv"
        generate_mixed(rows).to_csv(source, index=False)
        for _ in range(rounds):
            bases.append(measure("bare_mixed", source))
            mines.append(measure("ours_mixed", source))
    base, mine = _median_run(bases), _median_run(mines)
    ratio = mine["seconds"] / base["seconds"]
    with_import = (mine["seconds"] + mine["import_seconds"]) / base["seconds"]
    return {
        "case": "mixed",
        "commit": _commit(),
        "rows": rows,
        "feature_columns": MIXED_NUMERIC + 1 + MIXED_TEXT,
        "steps": "ingest -> validate -> clean -> split",
        "rounds": rounds,
        "ours_seconds": mine["seconds"],
        "bare_seconds": base["seconds"],
        "ours_seconds_each": [run["seconds"] for run in mines],
        "bare_seconds_each": [run["seconds"] for run in bases],
        "ratio": round(ratio, 2),
        "ours_gx_import_seconds": mine["import_seconds"],
        "ratio_with_gx_import": round(with_import, 2),
        "ours_peak_gib": mine["peak_gib"],
        "bare_peak_gib": base["peak_gib"],
        "targets": MIXED_TARGETS,
        "met": {"ratio": ratio <= MIXED_TARGETS["ratio"]},
    }


def run_numeric(rows: int) -> dict[str, Any]:
    """The numeric/categorical Parquet case, through standardize, with memory growth."""
    with tempfile.TemporaryDirectory(prefix="bench-data-") as folder:
        full = generate(rows)
        sources = {}
        for share in (4, 2, 1):
            sources[rows // share] = Path(folder) / f"rows-{rows // share}.parquet"
            full.iloc[: rows // share].to_parquet(sources[rows // share], index=False)
        del full
        base = measure("bare", sources[rows])
        mine = measure("ours", sources[rows])
        growth = {str(n): measure("ours", p)["peak_gib"] for n, p in sources.items() if n < rows}
    growth[str(rows)] = mine["peak_gib"]
    ratio = mine["seconds"] / base["seconds"]
    return {
        "commit": _commit(),
        "rows": rows,
        "columns": NUMERIC + CATEGORICAL,
        "ours_seconds": mine["seconds"],
        "bare_seconds": base["seconds"],
        "ratio": round(ratio, 2),
        "ours_peak_gib": mine["peak_gib"],
        "bare_peak_gib": base["peak_gib"],
        "ours_peak_gib_by_rows": growth,
        "targets": TARGETS,
        "met": {
            "ratio": ratio <= TARGETS["ratio"],
            "seconds": mine["seconds"] <= TARGETS["seconds"],
            "peak_gib": mine["peak_gib"] <= TARGETS["peak_gib"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("numeric", "mixed"), default="numeric")
    parser.add_argument(
        "--rows", type=int, nargs="+", default=None, help="numeric: 1000000; mixed: " + MIXED_ROWS
    )
    parser.add_argument("--rounds", type=int, default=3, help="mixed: rounds (odd; medians)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.case == "mixed":
        sizes = args.rows or [int(n) for n in MIXED_ROWS.split()]
        result: Any = {"runs": [run_mixed(rows, args.rounds) for rows in sizes]}
        name = "data_pipeline_mixed.json"
    else:
        result = run_numeric(args.rows[0] if args.rows else 1_000_000)
        name = "data_pipeline.json"
    output = args.output or ROOT / "benchmarks" / "results" / name
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
