"""The served bundle holds a Keras network or a fitted scikit-learn estimator, and serves both
the same way: raw rows in, `prediction` and `proba_<class>` out. (That a logged bundle holds
no pickle is tests/reliability/test_model_loading.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tasks import bundle
from tasks.bundle import Bundle, load_network, network_file, predict_rows, save_network
from tasks.config import CleanParams, DatasetParams, StandardizeParams
from tasks.datafiles import Arrays, flat_rows
from tasks.preprocessing import Preprocessor, fit_preprocessor
from tasks.runtime import UserError


def _fitted(train: Any, task: str = "classification") -> tuple[Any, Preprocessor]:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    dataset = DatasetParams(task=task)  # type: ignore[arg-type]
    preprocessor = fit_preprocessor(train, StandardizeParams(), CleanParams(), dataset)
    x = flat_rows(preprocessor.transform(train))
    y = preprocessor.encode_labels(train.y if isinstance(train, Arrays) else train["label"])
    model = MLPRegressor if task == "regression" else MLPClassifier
    return model(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(x, y), preprocessor


def test_a_sklearn_network_serves_images_and_survives_saving(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = Arrays(rng.uniform(0, 16, (40, 4, 4, 1)).astype("float32"), np.arange(40) % 3 + 5)
    estimator, preprocessor = _fitted(images)
    served = predict_rows(estimator, preprocessor, images.x)
    assert list(served.columns) == ["prediction", "proba_5", "proba_6", "proba_7"]
    proba = estimator.predict_proba(flat_rows(preprocessor.transform(images.x)))
    np.testing.assert_allclose(served.filter(like="proba_"), proba, rtol=1e-6)
    assert set(served["prediction"]) <= {5, 6, 7}, "labels decoded, not class codes"

    path = save_network(estimator, tmp_path)
    assert path.name == "model.skops" and network_file(tmp_path) == path
    pd.testing.assert_frame_equal(predict_rows(load_network(path), preprocessor, images.x), served)


def test_a_sklearn_network_serves_binary_and_regression_tables() -> None:
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    binary = table.assign(label=(table["a"] > 0).astype(int))
    served = predict_rows(*_fitted(binary), binary)  # the label column is dropped, not used
    assert list(served.columns) == ["prediction", "proba_0", "proba_1"]
    np.testing.assert_allclose(served["proba_0"] + served["proba_1"], 1.0, rtol=1e-6)

    regression = table.assign(label=table["a"] * 3.0)
    values = predict_rows(*_fitted(regression, "regression"), regression)
    assert list(values.columns) == ["prediction"] and values["prediction"].std() > 0


def test_no_network_in_the_model_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run the train stage first"):
        network_file(tmp_path)


def test_the_bundle_serves_natural_forms_as_it_serves_the_canonical_one() -> None:
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 17, (30, 4, 4))
    images = Arrays(pixels[..., np.newaxis].astype("float32"), np.arange(30) % 3)
    served = Bundle()
    served.network, served.preprocessor = _fitted(images)
    canonical = predict_rows(served.network, served.preprocessor, images.x)
    for natural in (pixels, pixels.astype("uint8"), pixels.reshape(30, 16), pixels.tolist()):
        pd.testing.assert_frame_equal(served.predict(None, natural), canonical)


def test_keras_outputs_in_chunks_equal_keras_predict(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    network = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(3).normal(size=(50, 6)).astype("float32")
    monkeypatch.setattr(bundle, "CHUNK_VALUES", 6 * 16)  # 16 rows a call: 4 calls, one short
    chunked = bundle.network_outputs(network, x)
    np.testing.assert_allclose(chunked, network.predict(x, verbose=0), rtol=1e-6)
    assert chunked.shape == (50, 3)
