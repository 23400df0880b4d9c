from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tasks.config import DriftParams, ParamsError, parse_params
from tasks.datafiles import Arrays
from tasks.drift import (
    decide_retrain,
    detect_drift,
    numeric_psi,
    plot_drift,
    psi,
    render_html,
)

RULES = DriftParams()


@pytest.fixture(scope="module")
def digits() -> tuple[Arrays, Arrays]:
    """sklearn's digits as [n, 8, 8, 1] images (pixels 0..16), shuffled into two halves."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    images = Arrays(bunch.images[order][..., None], bunch.target[order])
    half = len(images) // 2
    return images.take(np.arange(half)), images.take(np.arange(half, len(images)))


def _table(
    rows: int, seed: int, shift: float = 0.0, mix: list[float] | None = None, positive: float = 0.5
) -> pd.DataFrame:
    """Amounts ~ N(10 + shift, 2), a city mix, a yes/no column and a 0/1 label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.normal(10 + shift, 2, rows),
            "city": rng.choice(["Oslo", "Lima", "Pune"], rows, p=mix or [0.6, 0.3, 0.1]),
            "member": rng.random(rows) < 0.5,
            "label": (rng.random(rows) < positive).astype(int),
        }
    )


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["feature"]: entry for entry in report["features"]}


def test_two_halves_of_digits_do_not_drift(digits: tuple[Arrays, Arrays]) -> None:
    report = detect_drift(*digits, "label", RULES)
    assert not report["drift"] and report["drifted_features"] == []
    assert sorted(_by_name(report)) == ["max", "mean", "min", "std"]
    assert report["rows"] == {"reference": 898, "current": 899}
    assert report["label"]["test"] == "chi2" and not report["label"]["drifted"]
    assert report["reason"].startswith("no drift in 4 features or the label")
    json.dumps(report, allow_nan=False)  # JSON-ready: plain floats, bools and strings


def test_brightened_noisy_images_drift_on_mean_and_std(digits: tuple[Arrays, Arrays]) -> None:
    reference, current = digits
    noise = np.random.default_rng(1).normal(0, 2, current.x.shape)
    brighter = Arrays(np.clip(current.x * 1.5 + noise, 0, 16), current.y)
    report = detect_drift(reference, brighter, "label", RULES)
    assert report["drift"]
    assert {"mean", "std"} <= set(report["drifted_features"])
    assert report["features"][0]["feature"] in ("mean", "std")  # most drifted first
    assert not report["label"]["drifted"]
    assert report["reason"].startswith("drift in ")


def test_same_table_distribution_does_not_drift() -> None:
    report = detect_drift(_table(600, 1), _table(600, 2), "label", RULES)
    assert not report["drift"]
    kinds = {name: (e["kind"], e["test"]) for name, e in _by_name(report).items()}
    assert kinds == {
        "amount": ("numeric", "ks"),
        "city": ("categorical", "chi2"),
        "member": ("categorical", "chi2"),
    }


def test_shifted_column_and_new_category_mix_drift() -> None:
    current = _table(600, 2, shift=1.5, mix=[0.2, 0.3, 0.5])
    report = detect_drift(_table(600, 1), current, "label", RULES)
    assert report["drift"] and set(report["drifted_features"]) == {"amount", "city"}
    found = _by_name(report)
    assert found["amount"]["p_value"] < 0.01 and found["amount"]["psi"] >= 0.2
    assert not found["member"]["drifted"]
    assert report["features"][-1]["feature"] == "member"


def test_label_mix_change_drifts_alone() -> None:
    report = detect_drift(_table(600, 1), _table(600, 2, positive=0.85), "label", RULES)
    assert report["drifted_features"] == []
    assert report["label"]["drifted"] and report["drift"]
    assert "label (label)" in report["reason"]


def test_regression_label_uses_ks() -> None:
    reference, current = _table(400, 1), _table(400, 2)
    current["label"] = current["amount"] * 3
    reference["label"] = reference["amount"]
    report = detect_drift(reference, current, "label", RULES, task="regression")
    assert report["label"]["test"] == "ks" and report["label"]["drifted"]


def test_significant_but_small_shift_is_not_drift() -> None:
    # 20k rows: KS flags a 0.05-sd shift as significant, PSI says it is too small to matter
    report = detect_drift(_table(20_000, 1), _table(20_000, 2, shift=0.1), "label", RULES)
    amount = _by_name(report)["amount"]
    assert amount["p_value"] < 0.01 and amount["psi"] < 0.2
    assert not amount["drifted"]


def test_max_features_keeps_the_most_drifted() -> None:
    current = _table(600, 2, shift=1.5)
    report = detect_drift(_table(600, 1), current, "label", DriftParams(max_features=1))
    assert [e["feature"] for e in report["features"]] == ["amount"]
    assert report["features_tested"] == 3


def test_missing_column_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"lacks the reference's columns \['city'\]"):
        detect_drift(_table(50, 1), _table(50, 2).drop(columns="city"), "label", RULES)


def test_psi_by_hand() -> None:
    assert psi(np.array([50, 50]), np.array([50, 50])) == 0.0
    expected = 0.3 * np.log(0.8 / 0.5) + 0.3 * np.log(0.5 / 0.2)
    assert psi(np.array([50, 50]), np.array([80, 20])) == pytest.approx(expected)
    assert np.isfinite(psi(np.array([10, 0]), np.array([0, 10])))  # empty bins get an epsilon
    values = np.arange(1000.0)
    assert numeric_psi(values, values) == pytest.approx(0.0)
    # a constant reference (digits' min and max) still separates values below and above it
    assert numeric_psi(np.zeros(100), np.ones(100)) > 1
    assert numeric_psi(np.full(100, 16.0), np.full(100, 15.0)) > 1
    rng = np.random.default_rng(0)
    assert numeric_psi(rng.normal(size=2000), rng.normal(size=2000)) < 0.05


@pytest.mark.parametrize(
    ("report", "new_rows", "force", "retrain", "reason"),
    [
        ({"drift": False}, 12, True, True, "retrain: forced"),
        (None, 0, False, True, "retrain: no champion yet"),
        ({"drift": False}, 150, False, True, "retrain: 150 new or relabelled rows (15.0% >= 10%)"),
        ({"drift": True, "reason": "drift in mean"}, 0, False, True, "retrain: drift in mean"),
        (
            {"drift": True, "reason": "drift in mean"},
            150,
            False,
            True,
            "retrain: 150 new or relabelled rows (15.0% >= 10%); drift in mean",
        ),
        (
            {"drift": False},
            12,
            False,
            False,
            "skip: 12 new or relabelled rows (1.2% < 10%) and no drift",
        ),
    ],
)
def test_decide_retrain(
    report: dict[str, Any] | None, new_rows: int, force: bool, retrain: bool, reason: str
) -> None:
    assert decide_retrain(report, new_rows, 1000, RULES, force) == (retrain, reason)


def test_html_lists_drifted_features_first() -> None:
    current = _table(600, 2, shift=1.5, mix=[0.2, 0.3, 0.5])
    page = render_html(detect_drift(_table(600, 1), current, "label", RULES))
    assert page.startswith("<!doctype html>") and "<p>Drift: drift in " in page
    assert page.index("<td>amount</td>") < page.index("<td>member</td>")
    assert page.index("<td>city</td>") < page.index("<td>label (label)</td>")
    assert page.count("<tr class='fail'>") == 2


@pytest.mark.parametrize("kind", ["arrays", "table"])
def test_plot_drift_draws_the_most_drifted(kind: str, digits: tuple[Arrays, Arrays]) -> None:
    import matplotlib.pyplot as plt

    pair = digits if kind == "arrays" else (_table(300, 1), _table(300, 2, mix=[0.1, 0.1, 0.8]))
    report = detect_drift(*pair, "label", RULES)
    figure = plot_drift(*pair, report, "label")
    titles = [axis.get_title() for axis in figure.axes]
    plt.close(figure)
    assert len(titles) == (4 if kind == "arrays" else 3)
    assert titles[0].startswith(report["features"][0]["feature"] + ": psi")


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        ({"alpha": 1}, "drift.alpha"),
        ({"psi": 0}, "drift.psi"),
        ({"min_new_rows": -0.1}, "drift.min_new_rows"),
        ({"max_features": 0}, "drift.max_features"),
        ({"treshold": 0.1}, "unknown key 'drift.treshold'"),
    ],
)
def test_bad_drift_params_fail_in_one_line(drift: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError) as error:
        parse_params({"drift": drift})
    assert message in str(error.value) and "\n" not in str(error.value)
    assert parse_params({}).drift == DriftParams()
