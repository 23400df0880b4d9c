"""Every fitted object the pipeline writes loads back through the trusted-type list alone, the
same fit gives the same bytes, and a file holding any other type is refused."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tasks.config import CleanParams, DatasetParams, StandardizeParams
from tasks.datafiles import Arrays
from tasks.preprocessing import fit_preprocessor, load_preprocessor, save_preprocessor
from tasks.runtime import UserError
from tasks.skops_files import load_skops, save_skops

TABLE = pd.DataFrame(
    {
        "num": [1.0, 2.0, np.nan, 5.0, 3.0],
        "cat": ["a", "b", "a", None, "b"],
        "more": ["z", "z", None, "y", "y"],
        "y": ["no", "yes", "no", "yes", "no"],  # text labels: an object array of classes
    }
)
IMAGES = Arrays(np.arange(160.0).reshape(10, 4, 4, 1), np.arange(10) % 3)
PREPROCESSORS = {
    "onehot": (TABLE, StandardizeParams(), CleanParams(missing="mean")),
    "ordinal": (
        TABLE,
        StandardizeParams(scaler="minmax", categorical="ordinal"),
        CleanParams(missing="constant", missing_by_column={"num": "median"}, fill_value=0),
    ),
    "unscaled": (TABLE, StandardizeParams(scaler="none"), CleanParams(missing="most_frequent")),
    "images": (IMAGES, StandardizeParams(), CleanParams()),
}


def _fit(kind: str) -> Any:
    train, rules, clean = PREPROCESSORS[kind]
    return fit_preprocessor(train, rules, clean, DatasetParams(label="y"), (0, 200))


@pytest.mark.parametrize("kind", sorted(PREPROCESSORS))
def test_a_preprocessor_loads_as_it_was_and_the_same_fit_gives_the_same_file(
    kind: str, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.skops", tmp_path / "second.skops"
    save_preprocessor(_fit(kind), first)
    save_preprocessor(_fit(kind), second)  # an equal fit, other objects: same bytes, one md5
    assert first.read_bytes() == second.read_bytes()
    fitted, loaded = _fit(kind), load_preprocessor(first)
    rows = PREPROCESSORS[kind][0]
    assert fitted.transform(rows).tobytes() == loaded.transform(rows).tobytes()
    assert (loaded.columns, loaded.kinds, loaded.value_range) == (
        fitted.columns,
        fitted.kinds,
        (0, 200),
    )
    assert list(loaded.classes) == list(fitted.classes)


@pytest.mark.parametrize(
    ("estimator", "settings"),
    [("MLPClassifier", {}), ("MLPClassifier", {"solver": "sgd"}), ("MLPRegressor", {})],
)
def test_the_sklearn_mlp_loads_as_it_was(
    estimator: str, settings: dict[str, Any], tmp_path: Path
) -> None:
    from sklearn import neural_network

    x, y = np.random.default_rng(0).normal(size=(30, 5)), np.arange(30) % 3
    model = getattr(neural_network, estimator)(hidden_layer_sizes=(4,), max_iter=3, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 3 iterations
        model.fit(x, y)
    save_skops(model, tmp_path / "model.skops")
    np.testing.assert_array_equal(load_skops(tmp_path / "model.skops").predict(x), model.predict(x))


def test_a_file_holding_any_other_type_is_refused(tmp_path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    save_skops(FunctionTransformer(os.system), tmp_path / "bad.skops")  # what an attacker writes
    with pytest.raises(UserError, match=r"bad.skops: refused, it holds \['posix.system'\]"):
        load_skops(tmp_path / "bad.skops")
    save_skops(FunctionTransformer(), tmp_path / "other.skops")  # trusted, but no preprocessor
    with pytest.raises(UserError, match="holds a FunctionTransformer, not a fitted preprocessor"):
        load_preprocessor(tmp_path / "other.skops")
    (tmp_path / "preprocessor.pkl").write_bytes(b"\x80\x05N.")  # a pickle of None: never read
    with pytest.raises(UserError, match=r"preprocessor.pkl: not a skops file .*not read"):
        load_preprocessor(tmp_path / "preprocessor.pkl")
