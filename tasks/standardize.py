"""standardize: fit the preprocessor on the training split only and apply it to every split.

Reads `paths.split/{train,val,test}`; writes the fitted preprocessor to `paths.preprocessor`
(a skops file) and model-ready float32 arrays to `paths.processed/{train,val,test}.npz`. The same
preprocessor ships inside the registered model, so serving takes raw rows; it keeps
`validate.value_range`, beyond which serving refuses values. The preprocessor
itself is `tasks.preprocessing`.
"""

from __future__ import annotations

import logging

from tasks.config import Params, load_params
from tasks.datafiles import SPLITS, read_data, replace_dir, replace_file, save_npz
from tasks.preprocessing import (
    Preprocessor,
    fit_and_transform,
    save_preprocessor,
    transform_split,
)
from tasks.runtime import no_options, run_entry

log = logging.getLogger(__name__)


def run(params: Params) -> Preprocessor:
    """Fit on `paths.split/train`, write the preprocessor and the processed splits."""
    splits = {name: read_data(params.paths.split, name) for name in SPLITS}
    preprocessor, train = fit_and_transform(
        splits["train"],
        params.standardize,
        params.clean,
        params.dataset,
        params.validate_.value_range,  # what the served model refuses beyond
    )
    with replace_dir(params.paths.processed) as staging:
        for name, data in splits.items():
            x, y = train if name == "train" else transform_split(preprocessor, data)
            save_npz(staging / f"{name}.npz", x=x, y=y)
    with replace_file(params.paths.preprocessor) as staging_file:
        save_preprocessor(preprocessor, staging_file)
    log.info(
        "standardize: %s scaler fitted on %d training rows",
        params.standardize.scaler,
        len(splits["train"]),
    )
    return preprocessor


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.standardize")
