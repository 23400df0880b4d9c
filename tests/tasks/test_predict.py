"""Batch prediction against real registered bundles (a table and an image model) in a temp store.

The networks are small and untrained: what is checked is that the file path scores exactly as
the registered model does, and that bad files are refused before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tasks.config import CleanParams, DatasetParams, StandardizeParams
from tasks.datafiles import Arrays
from tasks.inputs import InputError
from tasks.predict import Schema, main, model_uri, read_input, training_schema
from tasks.runtime import UserError

COLUMNS = ["a", "b", "c"]


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.uniform(0, 10, (n, 3)), columns=COLUMNS)
    return frame.assign(label=np.arange(n) % 2)


def _images(n: int, seed: int = 0) -> Arrays:
    rng = np.random.default_rng(seed)
    return Arrays(rng.uniform(0, 16, (n, 4, 4, 1)).astype("float32"), np.arange(n) % 3)


def _register(name: str, train: Any, outputs: int, tmp: Path) -> None:
    import keras
    import mlflow

    from tasks.bundle import log_bundle, raw_features
    from tasks.preprocessing import fit_preprocessor, save_preprocessor

    rules, dataset = StandardizeParams(), DatasetParams()
    preprocessor = fit_preprocessor(train, rules, CleanParams(), dataset, value_range=(0, 16))
    width = preprocessor.transform(raw_features(train, "label")[:1]).shape[1:]
    network = keras.Sequential(
        [
            keras.Input(width),
            keras.layers.Flatten(),
            keras.layers.Dense(outputs, "sigmoid" if outputs == 1 else "softmax"),
        ]
    )
    folder = tmp / name
    folder.mkdir()
    network.save(folder / "model.keras")
    save_preprocessor(preprocessor, folder / "pre.skops")
    with mlflow.start_run():
        example = raw_features(train, "label")[:3]
        info = log_bundle(
            network, preprocessor, folder / "model.keras", folder / "pre.skops", example
        )
    version = mlflow.register_model(info.model_uri, name).version
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)


def _use(project: Path, name: str, **sections: dict[str, Any]) -> None:
    params = {"register": {"model_name": name}, "validate": {"value_range": [0, 16]}, **sections}
    (project / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store with `tables@champion` (binary, 3 columns), `images@champion` (4x4x1, 3 classes)."""
    from tasks.config import load_params
    from tasks.runtime import import_tensorflow
    from tasks.tracking import start_tracking

    path = tmp_path_factory.mktemp("predict")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        import_tensorflow()
        _use(path, "tables")
        start_tracking(load_params())
        _register("tables", _table(40), 1, path)
        _register("images", _images(30), 3, path)
        yield path


def _served(name: str, rows: Any) -> pd.DataFrame:
    import mlflow

    return mlflow.pyfunc.load_model(model_uri(name, None)).predict(rows)


def test_the_registered_images_model_takes_natural_inputs_and_says_what_it_takes(
    project: Path,
) -> None:
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri("images", None))
    assert model.metadata.get_input_schema() is None, "MLflow would refuse all but one form"
    assert model.metadata.metadata["inputs"] == {"sample_shape": [4, 4, 1], "value_range": [0, 16]}
    assert training_schema(model) == Schema(None, (4, 4, 1))
    images = _images(6, seed=3)
    canonical = model.predict(images.x)
    for natural in (images.x[..., 0].astype("float64"), images.x.reshape(6, 16).tolist()):
        pd.testing.assert_frame_equal(model.predict(natural), canonical)
    with pytest.raises(InputError, match=r"got an array of shape \(6, 5, 5\)"):
        model.predict(np.zeros((6, 5, 5)))
    with pytest.raises(InputError, match=r"within \[0, 16\] \(validate.value_range\)"):
        model.predict(images.x * 2)


def test_the_registered_table_model_takes_columns_in_any_order_and_as_text(
    project: Path,
) -> None:
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri("tables", None))
    assert training_schema(model) == Schema(COLUMNS, None)
    rows = _table(8, seed=4).drop(columns="label")
    canonical = model.predict(rows)
    as_text = rows[["c", "a", "b"]].astype("str")  # CSV or JSON with quoted numbers
    pd.testing.assert_frame_equal(model.predict(as_text), canonical)
    with pytest.raises(InputError, match="missing column"):
        model.predict(rows[["a", "b"]])


def test_table_with_ids_scores_as_the_registered_model(project: Path) -> None:
    _use(project, "tables", predict={"id_column": "customer"})
    rows = _table(25, seed=1).drop(columns="label").assign(customer=[f"c{i}" for i in range(25)])
    rows.to_csv(project / "new.csv", index=False)
    main(["--input", "new.csv", "--output", "scored.parquet"])
    scored = pd.read_parquet(project / "scored.parquet")
    assert scored["customer"].tolist() == rows["customer"].tolist()
    served = _served("tables", rows[COLUMNS])
    assert list(scored.columns) == ["customer", "prediction", "proba_0", "proba_1"]
    pd.testing.assert_frame_equal(scored.drop(columns="customer"), served, check_dtype=False)


def test_images_get_row_numbers_and_a_named_version(project: Path) -> None:
    _use(project, "images")
    images = _images(7, seed=2)
    np.savez(project / "new.npz", x=images.x)
    main(["--input", "new.npz", "--output", "scored.csv", "--version", "1"])
    scored = pd.read_csv(project / "scored.csv")
    assert scored["row"].tolist() == list(range(7))
    served = _served("images", images.x)
    np.testing.assert_allclose(
        scored[["proba_0", "proba_1", "proba_2"]], served.filter(like="proba_"), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("tables", lambda p: _table(5).drop(columns="b").to_csv(p / "bad.csv"), "column 'b'"),
        ("tables", lambda p: _table(5).assign(a=99.0).to_csv(p / "bad.csv"), "column 'a'"),
        ("tables", lambda p: (p / "bad.csv").write_text(""), "cannot be read"),
        ("images", lambda p: np.savez(p / "bad.npz", x=np.zeros((3, 5, 5, 1))), "shape (5, 5, 1)"),
        ("images", lambda p: _table(5).to_csv(p / "bad.csv"), "takes arrays"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_written(
    project: Path, name: str, write: Any, message: str
) -> None:
    _use(project, name)
    write(project)
    source = next(project.glob("bad.*"))
    try:
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            main(["--input", source.name, "--output", "out.csv"])
        assert not (project / "out.csv").exists()
    finally:
        source.unlink()


def test_missing_id_column_and_unknown_suffix(tmp_path: Path) -> None:
    _table(3).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(UserError, match="id column 'id' missing"):
        read_input(tmp_path / "x.csv", "id")
    with pytest.raises(UserError, match="expected one of"):
        read_input(tmp_path / "x.json", None)
    rows, ids = read_input(tmp_path / "x.csv", None)
    assert list(rows.columns) == [*COLUMNS, "label"] and ids.tolist() == [0, 1, 2]
