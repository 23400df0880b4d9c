from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tasks.config import GateParams, RegisterParams, parse_params
from tasks.gate import compare
from tasks.register import decide, missed_threshold, shared_rows
from tasks.runtime import UserError

RULES = RegisterParams(metric="accuracy", thresholds={"accuracy": 0.9})


def _gate(champion_right: int, challenger_right: int, rows: int = 400) -> object:
    truth = np.zeros(rows, dtype=int)
    champion = np.where(np.arange(rows) < champion_right, 0, 1)
    challenger = np.where(np.arange(rows) < challenger_right, 0, 1)
    return compare(truth, champion, challenger, "accuracy", GateParams())


def test_first_model_becomes_champion_only_if_it_passes_thresholds() -> None:
    assert decide({"accuracy": 0.95}, None, RULES).promote
    failed = decide({"accuracy": 0.85}, None, RULES)
    assert not failed.promote and "misses threshold" in failed.reason


@pytest.mark.parametrize(
    ("champion", "challenger", "promote"),
    [(360, 390, True), (380, 381, False), (390, 380, False)],  # clear gain, one row, worse
)
def test_a_challenger_must_beat_the_champion_beyond_chance(
    champion: int, challenger: int, promote: bool
) -> None:
    decision = decide({"accuracy": challenger / 400}, _gate(champion, challenger), RULES)  # type: ignore[arg-type]
    assert decision.promote is promote
    assert decision.champion_score == champion / 400
    assert "McNemar exact p=" in decision.reason


def test_thresholds_come_before_the_gate() -> None:
    decision = decide({"accuracy": 0.85}, _gate(300, 340), RULES)  # type: ignore[arg-type]
    assert not decision.promote and "misses threshold" in decision.reason


def test_lower_is_better_thresholds() -> None:
    rules = RegisterParams(metric="mse", thresholds={"mse": 10})
    assert missed_threshold({"mse": 1.0}, rules) is None
    assert missed_threshold({"mse": 11.0}, rules) == "mse=11.0000 misses threshold 10.0"


def test_unknown_metric() -> None:
    with pytest.raises(UserError, match="register.metric 'auc'"):
        missed_threshold(
            {"accuracy": 1.0}, RegisterParams(metric="auc", gate={"test": "bootstrap"})
        )


def test_shared_rows_leave_out_what_the_champion_trained_or_tuned_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    params = parse_params({})
    params.paths.split.mkdir(parents=True)
    today = {"train": {"keys": ["a"]}, "val": {"keys": []}, "test": {"keys": ["b", "c", "d", "e"]}}
    (params.paths.split / "manifest.json").write_text(json.dumps(today))
    champion = {"train": {"keys": ["a", "c"]}, "val": {"keys": ["e"]}, "test": {"keys": ["b"]}}
    assert shared_rows(params, champion).tolist() == [0, 2]  # b and d
    assert shared_rows(params, None).tolist() == [0, 1, 2, 3]  # a champion without a manifest


def test_a_bad_gate_section_fails_at_load_in_one_line() -> None:
    from tasks.config import ParamsError

    with pytest.raises(ParamsError) as error:
        parse_params({"register": {"metric": "f1", "gate": {"test": "mcnemar"}}})
    assert "\n" not in str(error.value) and "mcnemar" in str(error.value)
    assert parse_params({"register": {"metric": "f1"}}).register_.gate.test == "auto"
