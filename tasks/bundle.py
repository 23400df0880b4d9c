"""The served model: the fitted preprocessor and the Keras network as one MLflow pyfunc model.

`mlflow.pyfunc.load_model("models:/<name>@champion").predict(raw_rows)` takes rows in the raw
schema (a table without the label, or an array of images/sequences) and returns the
predicted label and, for classification, one probability column per class.
"""

from __future__ import annotations

import logging
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from tasks.datafiles import Arrays, Data
from tasks.standardize import Preprocessor

REQUIREMENTS = ("tensorflow", "keras", "scikit-learn", "pandas", "numpy", "pyarrow", "mlflow")


def predict_rows(network: Any, preprocessor: Preprocessor, raw: Any) -> pd.DataFrame:
    """Predictions for raw rows: `prediction`, plus `proba_<class>` columns for classification."""
    if isinstance(raw, pd.DataFrame) and preprocessor.label in raw.columns:
        raw = raw.drop(columns=preprocessor.label)
    outputs = np.asarray(
        network.predict(preprocessor.transform(raw), verbose=0, batch_size=1024), dtype="float64"
    )
    if preprocessor.classes is None:
        return pd.DataFrame({"prediction": outputs.reshape(-1)})
    if outputs.shape[1] == 1:
        outputs = np.hstack([1 - outputs, outputs])
    predicted = preprocessor.decode_labels(outputs.argmax(axis=1))
    proba = {f"proba_{c}": outputs[:, i] for i, c in enumerate(preprocessor.classes)}
    return pd.DataFrame({"prediction": predicted, **proba})


def raw_features(data: Data, label: str) -> Any:
    """The raw input rows, in the schema serving takes (features only, no label)."""
    return data.x if isinstance(data, Arrays) else data.drop(columns=label)


class Bundle(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Preprocessor + network, loaded from the model's artifacts."""

    # predict() takes tables and image arrays alike: no type-hint schema, no warning about it
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        import keras

        from tasks.standardize import load_preprocessor

        self.preprocessor = load_preprocessor(Path(context.artifacts["preprocessor"]))
        self.network = keras.saving.load_model(context.artifacts["network"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return predict_rows(self.network, self.preprocessor, model_input)


def log_bundle(
    network: Any,
    preprocessor: Preprocessor,
    network_path: Path,
    preprocessor_path: Path,
    example: Any,
) -> Any:
    """Log the bundle to the active MLflow run; return its ModelInfo."""
    from mlflow.models import infer_signature

    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)  # the cloudpickle caution
    # MLflow's hints (integer columns, predict() type hints) do not apply to this model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, predict_rows(network, preprocessor, example))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=Bundle(),
            artifacts={"network": str(network_path), "preprocessor": str(preprocessor_path)},
            code_paths=[str(Path(__file__).parent)],
            signature=signature,
            input_example=example,
            pip_requirements=[f"{name}=={version(name)}" for name in REQUIREMENTS],
        )
