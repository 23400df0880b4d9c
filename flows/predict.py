"""Batch prediction as a Prefect flow: validate a file, score it with `@champion`, write it.

    python -m flows.predict --input new.csv --output scored.csv [--version 3]

The steps are `tasks.predict`'s functions (also `python -m tasks.predict`, without Prefect);
a file that fails validation fails the flow run and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from tasks import predict as steps
from tasks.config import load_params
from tasks.runtime import run_entry


@flow(name="predict")
def batch_predict(source: str, target: str, version: int | None = None) -> dict[str, object]:
    """Score `source` (CSV, Parquet, NPZ) into `target` (CSV, Parquet)."""
    predictions = steps.run(load_params(), Path(source), Path(target), version)
    return {"rows": len(predictions), "output": target, "version": version or "champion"}


def main() -> None:
    args = steps.parse_args()
    summary = batch_predict(str(args.input), str(args.output), args.version)
    print(f"{summary['rows']} rows scored with {summary['version']}: {summary['output']}")


if __name__ == "__main__":
    run_entry("flows.predict")
