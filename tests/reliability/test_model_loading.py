"""A registered model loads without unpickling anything: a logged bundle (a Keras network on
a table, a scikit-learn MLP on images) holds no pickle, its pyfunc wrapper is MLflow's model from
code, and it loads and predicts in a fresh process where every way to unpickle raises."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tasks import bundle
from tasks.bundle import predict_rows, save_network
from tasks.config import CleanParams, DatasetParams, StandardizeParams
from tasks.datafiles import Arrays
from tasks.preprocessing import Preprocessor, fit_preprocessor, save_preprocessor
from tests.tasks.test_bundle import _fitted

# Loads each model (argv: the folder they are in, then the models) in a fresh process in which
# every way to unpickle raises, started outside the project: the `tasks` package can only come
# from the model's own code/tasks/
NO_PICKLE = """
import _pickle, pickle, sys
from pathlib import Path

def refuse(*args, **kwargs):
    raise AssertionError("the model tried to unpickle something")

class Refused:
    def __new__(cls, *args, **kwargs):
        refuse()

for module in (pickle, _pickle):
    module.load = module.loads = refuse
    module.Unpickler = Refused
pickle._Unpickler.load = refuse  # the pure-Python one, which joblib subclasses
import cloudpickle
cloudpickle.load = cloudpickle.loads = refuse

import mlflow, numpy as np, pandas as pd

for model in map(Path, sys.argv[2:]):
    rows = next(model.parent.glob("rows.*"))
    raw = pd.read_parquet(rows) if rows.suffix == ".parquet" else np.load(rows)
    mlflow.pyfunc.load_model(str(model)).predict(raw).to_parquet(model / "served.parquet")
code = Path(sys.modules["tasks.bundle"].__file__)
assert code.is_relative_to(sys.argv[1]) and code.parts[-3:] == ("code", "tasks", "bundle.py")
"""


def _keras_on_a_table(rng: np.random.Generator) -> tuple[Any, Preprocessor, pd.DataFrame]:
    import keras

    table = pd.DataFrame({"a": rng.normal(size=40), "b": rng.choice(["u", "v", None], 40)})
    table = table.assign(label=(table["a"] > 0).astype(int))
    preprocessor = fit_preprocessor(table, StandardizeParams(), CleanParams(), DatasetParams())
    width = preprocessor.transform(table).shape[1:]
    network = keras.Sequential([keras.Input(width), keras.layers.Dense(2, activation="softmax")])
    return network, preprocessor, table.drop(columns="label")[:12]


def _sklearn_on_images(rng: np.random.Generator) -> tuple[Any, Preprocessor, np.ndarray]:
    images = Arrays(rng.uniform(0, 16, (40, 4, 4, 1)).astype("float32"), np.arange(40) % 3)
    return (*_fitted(images), images.x[:12])


def _log(network: Any, preprocessor: Preprocessor, rows: Any, folder: Path) -> Path:
    """Log the bundle as train does and write the rows beside it; return the logged model,
    downloaded into folder/model."""
    import mlflow

    folder.mkdir()
    if isinstance(rows, pd.DataFrame):
        rows.to_parquet(folder / "rows.parquet")
    else:
        np.save(folder / "rows.npy", rows)
    save_preprocessor(preprocessor, folder / "preprocessor.skops")
    with mlflow.start_run():
        files = (save_network(network, folder), folder / "preprocessor.skops")
        info = bundle.log_bundle(network, preprocessor, *files, rows[:3])
    return Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(folder / "model")))


def _pickles(model: Path) -> list[str]:
    """Files, and members of zip files (.keras, .skops), that are pickles: by their name, or by
    pickle's opening bytes (the PROTO opcode 0x80 and a protocol from 2 on)."""
    starts = {bytes([0x80, protocol]) for protocol in range(2, 6)}
    found = []
    for path in (p for p in model.rglob("*") if p.is_file()):
        contents = {str(path.relative_to(model)): path.read_bytes()[:2]}
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                contents |= {f"{path.name}:{m}": archive.read(m)[:2] for m in archive.namelist()}
        found += [n for n, start in contents.items() if n.endswith(".pkl") or start in starts]
    return found


def _served_from_code(model: Path) -> bool:
    """The pyfunc wrapper is the model's source file, not a cloudpickled object, and its code
    ships as source alone (no compiled .pyc files)."""
    flavor = yaml.safe_load((model / "MLmodel").read_text())["flavors"]["python_function"]
    from_code = "python_model" not in flavor and bool(flavor["model_code_path"])
    source = (model / bundle.MODEL_CODE_FILE).read_text() == bundle.MODEL_CODE
    return from_code and source and not list(model.rglob("*.pyc"))


def test_a_logged_bundle_holds_no_pickle_and_loads_with_unpickling_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.config import parse_params
    from tasks.tracking import start_tracking

    monkeypatch.chdir(tmp_path)
    start_tracking(parse_params({"paths": {"mlruns": str(tmp_path / "mlruns")}}))
    rng = np.random.default_rng(5)
    bundles = {"keras": _keras_on_a_table(rng), "sklearn": _sklearn_on_images(rng)}
    models = {kind: _log(*made, tmp_path / kind) for kind, made in bundles.items()}
    for (kind, model), network in zip(models.items(), ("model.keras", "model.skops"), strict=True):
        assert _pickles(model) == [] and _served_from_code(model), kind
        artifacts = sorted(p.name for p in (model / "artifacts").iterdir())
        assert artifacts == [network, "preprocessor.skops"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [sys.executable, "-c", NO_PICKLE, str(tmp_path), *map(str, models.values())]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    loaded = subprocess.run(
        command, cwd=elsewhere, env=env, capture_output=True, text=True, check=False
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    for kind, (network, preprocessor, rows) in bundles.items():
        served = pd.read_parquet(models[kind] / "served.parquet")
        pd.testing.assert_frame_equal(served, predict_rows(network, preprocessor, rows))
