"""`python -m tasks.serve` (`make serve`): MLflow's real scoring server over a registered digits
bundle, asked over HTTP with JSON as clients send it; and one line when there is nothing to
serve. One server (a CNN trained for one epoch) is shared by the HTTP tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, run_cli

NAME = "digits-serve"
ROWS = 20
START_S = 180  # a loaded 2-core machine: TensorFlow and MLflow imported in three processes


@dataclass(frozen=True)
class Served:
    url: str
    expected: pd.DataFrame  # the pipeline's own predictions (predict_rows) for ROWS digits


def _register(project: Path) -> pd.DataFrame:
    """A CNN on digits, one epoch, as `NAME@champion` in the project's store; returns the
    pipeline's own predictions for the first ROWS digits."""
    import mlflow
    from sklearn.datasets import load_digits

    from tasks.bundle import log_bundle, predict_rows
    from tasks.config import (
        CleanParams,
        DatasetParams,
        ModelParams,
        StandardizeParams,
        TrainParams,
        load_params,
    )
    from tasks.datafiles import Arrays
    from tasks.models import build_model, head_for
    from tasks.preprocessing import fit_preprocessor, save_preprocessor, transform_split
    from tasks.runtime import import_tensorflow
    from tasks.tracking import start_tracking

    import_tensorflow()
    digits = load_digits()
    train = Arrays(digits.images[..., np.newaxis].astype("float32"), digits.target)
    rules, clean, dataset = StandardizeParams(scaler="minmax"), CleanParams(), DatasetParams()
    preprocessor = fit_preprocessor(train, rules, clean, dataset, value_range=(0, 16))
    x, y = transform_split(preprocessor, train)
    model = ModelParams(type="cnn", conv_filters=[8], hidden_units=[16])
    network = build_model(model, TrainParams(), (8, 8, 1), head_for("classification", 10))
    network.fit(x, y, epochs=1, batch_size=64, verbose=0)
    network.save(project / "model.keras")
    save_preprocessor(preprocessor, project / "preprocessor.skops")
    start_tracking(load_params())
    with mlflow.start_run():
        files = (project / "model.keras", project / "preprocessor.skops")
        info = log_bundle(network, preprocessor, *files, train.x[:5])
    version = mlflow.register_model(info.model_uri, NAME).version
    mlflow.MlflowClient().set_registered_model_alias(NAME, "champion", version)
    return predict_rows(network, preprocessor, train.x[:ROWS])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`python -m tasks.serve` on a free port, until the module's tests are done."""
    from tasks.runtime import free_port

    project = tmp_path_factory.mktemp("serve")
    params = {"register": {"model_name": NAME}, "validate": {"value_range": [0, 16]}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        expected = _register(project)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(key, None)  # the project's own store, as `make serve` finds it
    command = [sys.executable, "-m", "tasks.serve", "--port", str(port)]
    log_path = project / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: the server and what it starts
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_healthy(url, process, log_path)
        yield Served(url, expected)
    finally:
        _stop(process)


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"no answer on {url}/ping after {START_S} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The whole process group: the command became `mlflow models serve`, which runs uvicorn.
    SIGTERM, then SIGKILL for whatever is left after 15 s; returns when none of it is left."""
    for sent, grace_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        if not _signal_group(process, sent):
            break
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _signal_group(process, 0):
            time.sleep(0.2)
    process.wait(timeout=5)


def _signal_group(process: subprocess.Popen[bytes], sent: int) -> bool:
    """Send `sent` to the process group; False once the group is gone."""
    process.poll()  # reap the leader: a zombie would keep the group alive
    try:
        os.killpg(process.pid, sent)
    except ProcessLookupError:
        return False
    return True


def _post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _digits() -> Any:
    from sklearn.datasets import load_digits

    return load_digits()


@pytest.mark.slow
def test_json_inputs_and_dataframe_split_predict_what_the_pipeline_predicts(
    server: Served,
) -> None:
    digits = _digits()
    nested = digits.images[:ROWS].astype(int).tolist()  # (n, 8, 8) integers, no channel axis
    status, body = _post(server.url, {"inputs": nested})
    assert status == 200, body
    pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"]), server.expected)

    split = {"columns": digits.feature_names, "data": digits.data[:ROWS].tolist()}  # 64 columns
    status, body = _post(server.url, {"dataframe_split": split})
    assert status == 200, body
    pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"]), server.expected)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"inputs": np.full((3, 5, 5), 7.25).tolist()}, "got an array of shape (3, 5, 5)"),
        ({"inputs": np.full((2, 8, 8), 255).tolist()}, "within [0, 16] (validate.value_range)"),
        ({"inputs": [["seven"] * 64]}, "real or integer numbers, got text"),
        ({"dataframe_split": {"data": np.full((2, 10), 7.25).tolist()}}, "table of 10 columns"),
    ],
    ids=["size", "range", "text", "columns"],
)
def test_a_bad_request_gets_400_and_one_short_message(
    server: Served, payload: dict[str, Any], expected: str
) -> None:
    status, body = _post(server.url, payload)
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE", body
    message = body["message"]
    assert expected in message, message
    assert len(message) <= 300 and message.count("\n") <= 2
    assert "7.25" not in message and "seven" not in message, "never the data itself"
    assert "stack_trace" not in body


def test_nothing_to_serve_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"register": {"model_name": NAME}}))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    command = [sys.executable, "-m", "tasks.serve", "--port", "1"]

    def last_line() -> str:
        result = run_cli(command, tmp_path, check=False)
        assert result.returncode == 1, result
        return result.stderr.strip().splitlines()[-1]

    assert last_line().startswith("error: no MLflow store at sqlite:///")
    (tmp_path / "mlruns").mkdir()
    store = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.search_registered_models()  # an empty store
    assert "cannot serve models:/digits-serve@champion from sqlite:///" in last_line()
    client.create_registered_model(NAME)
    assert last_line().startswith(f"error: {NAME} has no @champion in sqlite:///")
