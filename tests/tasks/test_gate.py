from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tasks.config import GateParams, ParamsError, parse_params
from tasks.gate import GateResult, compare, fast_score

ROWS = 400
TRUTH = np.arange(ROWS) % 4  # four balanced classes
BOTH = ("mcnemar", "bootstrap")


def _wrong_on(rows: range) -> np.ndarray:
    """TRUTH, except the given rows are predicted as the next class."""
    predicted = TRUTH.copy()
    predicted[list(rows)] = (TRUTH[list(rows)] + 1) % 4
    return predicted


def _gate(test: str, **rules: Any) -> GateParams:
    return GateParams(test=test, resamples=500, **rules)  # type: ignore[arg-type]


@pytest.mark.parametrize("test", BOTH)
def test_clearly_better_challenger_passes(test: str) -> None:
    result = compare(TRUTH, _wrong_on(range(60)), _wrong_on(range(10)), "accuracy", _gate(test))
    assert result.passed
    assert result.difference == pytest.approx(50 / ROWS)
    assert (result.champion_score, result.challenger_score) == (0.85, 0.975)
    assert result.p_value < 0.01 and result.n_rows == ROWS
    assert "better beyond chance" in result.reason and "\n" not in result.reason


def test_identical_challenger_fails_with_p_one() -> None:
    same = _wrong_on(range(30))
    result = compare(TRUTH, same, same.copy(), "accuracy", _gate("mcnemar"))
    assert not result.passed
    assert (result.p_value, result.difference, result.interval) == (1.0, 0.0, None)
    assert "McNemar exact p=1 >= 0.05: not better than the champion" in result.reason


@pytest.mark.parametrize("test", BOTH)
def test_one_row_of_noise_is_not_an_improvement(test: str) -> None:
    result = compare(TRUTH, _wrong_on(range(20)), _wrong_on(range(1, 20)), "accuracy", _gate(test))
    assert result.difference == pytest.approx(1 / ROWS)
    assert not result.passed
    assert result.p_value >= 0.05
    assert "not better beyond chance" in result.reason


@pytest.mark.parametrize("test", BOTH)
def test_worse_challenger_fails(test: str) -> None:
    result = compare(TRUTH, _wrong_on(range(10)), _wrong_on(range(60)), "accuracy", _gate(test))
    assert result.difference < 0 and not result.passed
    assert result.p_value > 0.5


def test_lower_is_better_metric_flips_the_sign() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=ROWS)
    close, far = truth + rng.normal(0, 0.2, ROWS), truth + rng.normal(0, 1.0, ROWS)
    better = compare(truth, far, close, "mae", _gate("bootstrap"))
    assert better.challenger_score < better.champion_score
    assert better.difference == pytest.approx(better.champion_score - better.challenger_score)
    assert better.difference > 0 and better.interval is not None and better.interval[0] > 0
    assert better.passed and "lower is better" in better.reason
    worse = compare(truth, close, far, "mae", _gate("bootstrap"))
    assert worse.difference == pytest.approx(-better.difference)
    assert not worse.passed


@pytest.mark.parametrize("test", BOTH)
def test_min_improvement_blocks_a_significant_small_gain(test: str) -> None:
    champion, challenger = _wrong_on(range(60)), _wrong_on(range(40))
    assert compare(TRUTH, champion, challenger, "accuracy", _gate(test)).passed
    result = compare(TRUTH, champion, challenger, "accuracy", _gate(test, min_improvement=0.1))
    assert not result.passed
    assert result.p_value < 0.05
    assert "below register.gate.min_improvement 0.1" in result.reason


@pytest.mark.parametrize("metric", ["f1", "precision_macro", "recall", "r2", "mse"])
def test_bootstrap_gates_other_metrics(metric: str) -> None:
    regression = metric in ("r2", "mse")
    truth = TRUTH.astype(float) if regression else TRUTH
    champion, challenger = _wrong_on(range(80)), _wrong_on(range(5))
    result = compare(truth, champion, challenger, metric, _gate("bootstrap"))
    assert result.passed and result.difference > 0


def test_seeded_bootstrap_is_reproducible() -> None:
    champion, challenger = _wrong_on(range(40)), _wrong_on(range(25))
    first = compare(TRUTH, champion, challenger, "f1", _gate("bootstrap", seed=7))
    again = compare(TRUTH, champion, challenger, "f1", _gate("bootstrap", seed=7))
    assert first == again
    assert first.interval is not None and first.interval[0] < first.difference < first.interval[1]


def test_labels_of_any_type_and_json_ready_result() -> None:
    names = np.array(["cat", "dog"])
    truth = names[TRUTH % 2]
    result = compare(truth, names[_wrong_on(range(60)) % 2], truth, "accuracy", _gate("bootstrap"))
    assert isinstance(result, GateResult) and result.passed
    payload = json.loads(json.dumps(result.as_dict()))
    assert payload["interval"] == list(result.interval or ())
    assert payload["test"] == "bootstrap" and payload["passed"] is True


@pytest.mark.parametrize("name", ["accuracy", "precision", "recall", "f1", "mae", "mse", "r2"])
def test_fast_scores_match_sklearn(name: str) -> None:
    from sklearn import metrics

    rng = np.random.default_rng(3)
    truth, predicted = rng.integers(0, 5, 60), rng.integers(1, 6, 60)  # class 5: predicted only
    expected = {
        "accuracy": metrics.accuracy_score,
        "precision": lambda t, p: metrics.precision_score(t, p, average="macro", zero_division=0),
        "recall": lambda t, p: metrics.recall_score(t, p, average="macro", zero_division=0),
        "f1": lambda t, p: metrics.f1_score(t, p, average="macro", zero_division=0),
        "mae": metrics.mean_absolute_error,
        "mse": metrics.mean_squared_error,
        "r2": metrics.r2_score,
    }[name](truth, predicted)
    assert fast_score(name, 6)(truth, predicted) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("metric", "test", "message"),
    [
        ("roc_auc", "bootstrap", "cannot compute 'roc_auc'"),
        ("mae_macro", "bootstrap", "cannot compute 'mae_macro'"),
        ("f1", "mcnemar", "accuracy only"),
    ],
)
def test_metrics_the_gate_cannot_judge(metric: str, test: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare(TRUTH, TRUTH, TRUTH, metric, _gate(test))


def test_predictions_must_cover_the_same_rows() -> None:
    with pytest.raises(ValueError, match=r"one nonzero length, got \[400, 400, 399\]"):
        compare(TRUTH, TRUTH, TRUTH[:-1], "accuracy", _gate("mcnemar"))


def test_gate_params_default_and_bootstrap_for_any_metric() -> None:
    assert parse_params({}).register_.gate == GateParams()
    params = parse_params({"register": {"metric": "f1", "gate": {"test": "bootstrap"}}})
    assert params.register_.gate.test == "bootstrap"


@pytest.mark.parametrize(
    ("register", "message"),
    [
        ({"gate": {"test": "wilcoxon"}}, "register.gate.test"),
        ({"gate": {"alpha": 1.5}}, "register.gate.alpha"),
        ({"gate": {"alpha": 0}}, "register.gate.alpha"),
        ({"gate": {"resamples": 10}}, "register.gate.resamples"),
        ({"gate": {"min_improvement": -0.1}}, "register.gate.min_improvement"),
        (
            {"metric": "f1", "gate": {"test": "mcnemar"}},
            "'mcnemar' compares right/wrong rows, so it needs register.metric",
        ),
        ({"min_improvement": 0.01}, "unknown key 'register.min_improvement'"),
    ],
)
def test_bad_gate_params_fail_in_one_line(register: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError) as error:
        parse_params({"register": register}, Path("params.yaml"))
    text = str(error.value)
    assert message in text
    assert text.startswith("params.yaml: ") and "\n" not in text
