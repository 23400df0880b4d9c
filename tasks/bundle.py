"""The served model: the fitted preprocessor and the network as one MLflow pyfunc model.

`mlflow.pyfunc.load_model("models:/<name>@champion").predict(raw_rows)` takes rows in the raw
schema (a table without the label, or an array of images/sequences) or in any natural form of
it (`tasks.inputs`: other dtypes, no channel axis, flat pixel rows, tables with columns in any
order, nested lists from JSON) and returns the predicted label and, for classification, one
probability column per class. The signature records only the outputs: MLflow's own input
check would refuse all but the one dtype and shape it saw, so the bundle checks its input
itself and the model's metadata (`inputs`) says what it takes.

The network is a Keras model (`model.keras`) or a fitted scikit-learn estimator (`model.skops`,
the `sklearn_mlp` baseline); everything here serves both the same way.

Loading the model unpickles nothing: the pyfunc wrapper is logged as code (MLflow's models from
code: MODEL_CODE, beside this package's source in the model's `code/tasks/`), the network is
loaded by Keras in safe mode (no Python code inside a `.keras` file runs) or by skops, and the
preprocessor by skops, each allowing only `tasks.skops_files.TRUSTED_TYPES` beyond skops' own.
"""

from __future__ import annotations

import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, is_classifier

from tasks.datafiles import Arrays, Data, flat_rows, pin_archive
from tasks.inputs import canonical_rows
from tasks.preprocessing import Preprocessor, load_preprocessor
from tasks.runtime import UserError, import_tensorflow
from tasks.skops_files import load_skops, save_skops

REQUIREMENTS = ("tensorflow", "keras", "scikit-learn", "pandas", "numpy", "pyarrow", "mlflow")
KERAS_ONLY = ("tensorflow", "keras")
NETWORK_FILES = ("model.keras", "model.skops")  # a Keras model; a scikit-learn estimator
CHUNK_VALUES = 2**18  # input values per Keras call: 4,096 digits, 334 MNIST images
MAX_CHUNK_ROWS = 8192


def network_outputs(network: Any, x: np.ndarray) -> np.ndarray:
    """The network's outputs for model-ready rows: class probabilities (Keras gives one column,
    the positive class's, for two classes) or predicted values."""
    if isinstance(network, BaseEstimator):
        rows = flat_rows(x)
        return network.predict_proba(rows) if is_classifier(network) else network.predict(rows)
    # Keras's predict() sets up a dataset and a batch loop on every call: about 40 ms, plus
    # per-batch steps; a few large predict_on_batch calls give the same outputs 3-60x sooner
    per_row = max(1, int(np.prod(x.shape[1:])))
    chunk = max(1, min(MAX_CHUNK_ROWS, CHUNK_VALUES // per_row))
    if len(x) <= chunk:
        return np.asarray(network.predict_on_batch(x))
    parts = [network.predict_on_batch(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate([np.asarray(part) for part in parts])


def predict_rows(network: Any, preprocessor: Preprocessor, raw: Any) -> pd.DataFrame:
    """Predictions for raw rows: `prediction`, plus `proba_<class>` columns for classification."""
    if isinstance(raw, pd.DataFrame) and preprocessor.label in raw.columns:
        raw = raw.drop(columns=preprocessor.label)
    outputs = np.asarray(network_outputs(network, preprocessor.transform(raw)), dtype="float64")
    if preprocessor.classes is None:
        return pd.DataFrame({"prediction": outputs.reshape(-1)})
    if outputs.shape[1] == 1:
        outputs = np.hstack([1 - outputs, outputs])
    predicted = preprocessor.decode_labels(outputs.argmax(axis=1))
    proba = {f"proba_{c}": outputs[:, i] for i, c in enumerate(preprocessor.classes)}
    return pd.DataFrame({"prediction": predicted, **proba})


def save_network(network: Any, folder: Path) -> Path:
    """Write the network into folder in its own format; return the file."""
    if isinstance(network, BaseEstimator):
        path = folder / "model.skops"
        save_skops(network, path)
    else:
        path = folder / "model.keras"
        network.save(path)
        pin_archive(path)  # the same weights, the same file: both doors give one md5
    return path


def network_file(folder: Path) -> Path:
    """The network that train wrote into folder (`paths.model`)."""
    for name in NETWORK_FILES:
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"{folder}: no {' or '.join(NETWORK_FILES)} (run the train stage first)")


def load_network(path: Path) -> Any:
    """A network saved by save_network."""
    if path.suffix == ".skops":
        return load_skops(path)
    import_tensorflow()
    import keras

    return keras.saving.load_model(path, safe_mode=True)  # a Lambda layer is refused, not run


def raw_features(data: Data, label: str) -> Any:
    """The raw input rows, in the schema serving takes (features only, no label)."""
    return data.x if isinstance(data, Arrays) else data.drop(columns=label)


# The logged model's entry point, kept as text in the model: loading the model runs it, and
# its imports come from the model's own `code/tasks/` (log_bundle's code_paths)
MODEL_CODE_FILE = "bundle_model.py"
MODEL_CODE = '''"""The served model: tasks.bundle.Bundle, from code/tasks/ beside this file."""

import mlflow.models

from tasks.bundle import Bundle

mlflow.models.set_model(Bundle())
'''


class Bundle(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Preprocessor + network (Keras or scikit-learn), loaded from the model's artifacts."""

    # predict() takes tables and image arrays alike: no type-hint schema, no warning about it
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        self.preprocessor = load_preprocessor(Path(context.artifacts["preprocessor"]))
        self.network = load_network(Path(context.artifacts["network"]))

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        rows = canonical_rows(self.preprocessor, model_input)  # InputError: a short HTTP 400
        return predict_rows(self.network, self.preprocessor, rows)


def input_description(preprocessor: Preprocessor) -> dict[str, Any]:
    """What the bundle takes, for the model's metadata: table columns, or the sample shape."""
    limits = preprocessor.value_range
    value_range = None if limits is None else [float(v) for v in limits]
    if preprocessor.columns is not None:
        return {"columns": list(preprocessor.columns), "value_range": value_range}
    shape = [int(n) for n in preprocessor.features.shape_]
    return {"sample_shape": shape, "value_range": value_range}


def log_bundle(
    network: Any,
    preprocessor: Preprocessor,
    network_path: Path,
    preprocessor_path: Path,
    example: Any,
) -> Any:
    """Log the bundle to the active MLflow run; return its ModelInfo."""
    from mlflow.models import ModelSignature, infer_signature

    # MLflow's hints (integer columns, predict() type hints) do not apply to this model
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as folder:
        warnings.simplefilter("ignore", UserWarning)
        outputs = infer_signature(example, predict_rows(network, preprocessor, example)).outputs
        model_code = Path(folder) / MODEL_CODE_FILE
        model_code.write_text(MODEL_CODE)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(model_code),  # source, run on loading; not a pickled object
            artifacts={"network": str(network_path), "preprocessor": str(preprocessor_path)},
            code_paths=[str(Path(__file__).parent)],
            signature=ModelSignature(inputs=None, outputs=outputs),  # no input enforcement
            input_example=example,
            metadata={"inputs": input_description(preprocessor)},
            pip_requirements=[f"{name}=={version(name)}" for name in _requirements(network)],
        )


def _requirements(network: Any) -> list[str]:
    """What serving needs installed: a scikit-learn network needs no TensorFlow."""
    sklearn_only = isinstance(network, BaseEstimator)
    return [name for name in REQUIREMENTS if not (sklearn_only and name in KERAS_ONLY)]
