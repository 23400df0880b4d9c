from __future__ import annotations

import pytest

from tasks.config import RegisterParams
from tasks.register import decide
from tasks.runtime import UserError

RULES = RegisterParams(metric="accuracy", min_improvement=0.01, thresholds={"accuracy": 0.9})


def test_first_model_becomes_champion_only_if_it_passes_thresholds() -> None:
    assert decide({"accuracy": 0.95}, None, RULES).promote
    failed = decide({"accuracy": 0.85}, None, RULES)
    assert not failed.promote and "misses threshold" in failed.reason


@pytest.mark.parametrize(("score", "promote"), [(0.96, True), (0.955, False), (0.90, False)])
def test_challenger_must_beat_champion_by_the_margin(score: float, promote: bool) -> None:
    assert decide({"accuracy": score}, 0.95, RULES).promote is promote


def test_lower_is_better_for_error_metrics() -> None:
    rules = RegisterParams(metric="mse", min_improvement=0.0, thresholds={"mse": 10})
    assert decide({"mse": 1.0}, 2.0, rules).promote
    assert not decide({"mse": 3.0}, 2.0, rules).promote
    assert not decide({"mse": 11.0}, None, rules).promote


def test_unknown_metric() -> None:
    with pytest.raises(UserError, match="register.metric 'auc'"):
        decide({"accuracy": 1.0}, None, RegisterParams(metric="auc"))
