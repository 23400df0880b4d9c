from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.clean import clean_data
from tasks.config import CleanParams, DatasetParams
from tasks.datafiles import Arrays
from tasks.runtime import UserError

DATASET = DatasetParams(label="y")


def test_duplicates_and_missing_go_to_quarantine_with_reasons() -> None:
    frame = pd.DataFrame({"a": [1.0, 1.0, np.nan, 4.0, 5.0], "y": [0, 0, 1, None, 1]})
    cleaned = clean_data(frame, CleanParams(), DATASET)
    assert cleaned.data["a"].tolist() == [1.0, 5.0]
    assert cleaned.counts() == {"duplicate": 1, "missing_value": 1, "missing_label": 1}
    assert sorted(cleaned.quarantine["row"]) == [1, 2, 3]
    assert len(frame) == 5, "the input is never modified"


def test_imputing_strategies_keep_rows_with_missing_features() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "y": [0, 1, 0]})
    cleaned = clean_data(frame, CleanParams(missing="median"), DATASET)
    assert len(cleaned.data) == 3 and cleaned.quarantine.empty


def test_arrays_drop_non_finite_and_duplicate_samples() -> None:
    x = np.arange(4 * 2 * 2, dtype="float32").reshape(4, 2, 2)
    x[1] = x[0]
    x[2, 0, 0] = np.nan
    cleaned = clean_data(Arrays(x, np.array([0, 0, 1, 1])), CleanParams(), DATASET)
    assert isinstance(cleaned.data, Arrays) and len(cleaned.data) == 2
    assert cleaned.counts() == {"duplicate": 1, "missing_value": 1}


def test_a_frame_that_loses_every_row_is_an_error() -> None:
    frame = pd.DataFrame({"a": [np.nan, np.nan], "y": [0, 1]})
    with pytest.raises(UserError, match="every row was dropped"):
        clean_data(frame, CleanParams(), DATASET)
