"""Batch prediction as a Prefect flow: validate a file, score it with `@champion`, write it.

    python -m flows.predict --input new.csv --output scored.csv [--version 3]

The steps are `tasks.predict`'s functions (also `python -m tasks.predict`, without Prefect);
a file that fails validation fails the flow run and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from prefect import State, flow
from prefect.states import Failed

from tasks import predict as steps
from tasks.config import load_params
from tasks.runtime import UserError, run_entry


@flow(name="predict")
def batch_predict(
    source: str, target: str, version: int | None = None
) -> dict[str, object] | State:
    """Score `source` (CSV, Parquet, NPZ) into `target` (CSV, Parquet)."""
    try:
        predictions = steps.run(load_params(), Path(source), Path(target), version)
    except UserError as error:  # a bad file: a failed run with one clear message, no traceback
        return Failed(message=str(error))
    return {"rows": len(predictions), "output": target, "version": version or "champion"}


def main() -> None:
    args = steps.parse_args()
    state = batch_predict(str(args.input), str(args.output), args.version, return_state=True)
    if state.is_failed():
        raise UserError(state.message or "the predict flow failed")
    summary = state.result()
    print(f"{summary['rows']} rows scored with {summary['version']}: {summary['output']}")  # type: ignore[index]


if __name__ == "__main__":
    run_entry("flows.predict")
