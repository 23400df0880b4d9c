"""The retrain decision's data side: new, relabelled and drifted rows against the champion's
manifest, and which DVC changes count as more than new data. The flow's own use of it (a
skipped run, a forced one) is in tests/test_pipeline.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

from flows.decide import _changes, compare_with_champion
from tasks.config import Params, parse_params
from tasks.datafiles import Arrays, write_data
from tasks.split import manifest, split_data

DATA_OUTS = {"data/clean", "reports/validation/clean.json"}


def _digits() -> Arrays:
    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    return Arrays(bunch.images[order][..., np.newaxis].astype("float32"), bunch.target[order])


def _champion(data: Arrays, params: Params) -> dict[str, Any]:
    """The manifest a champion trained on `data` logged with its run."""
    parts, keys = split_data(data, params.split, params.dataset)
    return manifest(keys, {n: p.y for n, p in parts.items()}, "classification")  # type: ignore[union-attr]


@pytest.fixture
def params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Params:
    monkeypatch.chdir(tmp_path)
    return parse_params({})


def _compare(params: Params, data: Arrays, champion: dict[str, Any]) -> tuple[int, int, Any]:
    write_data(data, params.paths.clean, "data")
    return compare_with_champion(params, champion)


def test_grown_data_from_the_same_source_is_new_rows_without_drift(params: Params) -> None:
    digits = _digits()
    first = digits.take(np.arange(1000))
    changed, known, report = _compare(params, digits, _champion(first, params))
    assert (changed, known) == (797, 1000)
    assert not report["drift"], report["reason"]
    assert json.loads((params.paths.reports / "drift.json").read_text())["drift"] is False
    assert (params.paths.reports / "drift.html").is_file()
    assert (params.paths.reports / "drift.png").is_file()


def test_brightened_noisy_new_rows_are_drift(params: Params) -> None:
    digits = _digits()
    champion = _champion(digits.take(np.arange(1000)), params)
    x = digits.x.copy()
    noise = np.random.default_rng(1).normal(0, 1.5, x[1000:].shape)
    x[1000:] = np.clip(x[1000:] * 1.25 + 2 + noise, 0, 16)
    _, _, report = _compare(params, Arrays(x, digits.y), champion)
    assert report["drift"] and "mean" in report["drifted_features"], report["reason"]
    assert "drift in" in report["reason"]


def test_relabelled_rows_count_as_changed_and_the_same_data_as_nothing(params: Params) -> None:
    digits = _digits()
    champion = _champion(digits, params)
    assert _compare(params, digits, champion) == (0, 1797, None)
    relabelled = digits.y.copy()
    relabelled[:50] = (relabelled[:50] + 1) % 10
    changed, _, report = _compare(params, Arrays(digits.x, relabelled), champion)
    assert changed == 50 and report is not None


def test_only_the_data_steps_outputs_count_as_data() -> None:
    status = [
        {"changed deps": {"data/clean": "modified", "params.yaml": {"train": "modified"}}},
        {"changed outs": {"models/model": "deleted"}},
        "always changed",
    ]
    assert _changes(status, DATA_OUTS) == [
        "params.yaml: train modified",
        "models/model deleted",
        "always changed",
    ]
    assert _changes([{"changed deps": {"data/clean": "modified"}}], DATA_OUTS) == []
