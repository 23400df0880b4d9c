from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks.config import ParamsError, load_params, parse_params, with_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_committed_params_load() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.split.train == 0.7 and params.split.val == 0.1 and params.split.test == 0.2
    assert params.register_.model_name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"trian": {"epochs": 3}}, "unknown key 'trian'"),
        ({"train": {"epochs": 3, "epoch": 4}}, "unknown key 'train.epoch'"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"train": {"optimizer": "adamw"}}, "train.optimizer"),
        ({"split": {"train": 0.7, "val": 0.2, "test": 0.2}}, "must sum to 1, got 1.1"),
        ({"split": {"train": 0, "val": 0.5, "test": 0.5}}, "split.train"),
        ({"tune": {"grid": {"train.nope": [1]}}}, "tune.grid axis 'train.nope'"),
        ({"ingest": {"source": "csv"}}, "ingest.path is required"),
        ({"standardize": {"scaler": "robust"}}, "standardize.scaler"),
    ],
)
def test_bad_params_name_the_key_in_one_line(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ParamsError) as error:
        parse_params(raw, Path("params.yaml"))
    text = str(error.value)
    assert message in text
    assert text.startswith("params.yaml: ")
    assert "\n" not in text


def test_params_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "missing.yaml")
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)
    broken.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(ParamsError, match="mapping"):
        load_params(broken)


def test_params_are_frozen_and_overrides_validate() -> None:
    params = parse_params({})
    with pytest.raises(ValueError, match="frozen"):
        params.train.epochs = 3  # type: ignore[misc]
    changed = with_overrides(params, {"train.learning_rate": 0.01, "model.dropout": 0.5})
    assert (changed.train.learning_rate, changed.model.dropout) == (0.01, 0.5)
    assert params.train.learning_rate != 0.01
    with pytest.raises(ParamsError, match="model.dropout"):
        with_overrides(params, {"model.dropout": 2})
