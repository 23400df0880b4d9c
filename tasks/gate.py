"""gate: does a challenger beat the champion beyond chance, on the same rows?

Reads the true labels and both models' predictions on rows neither model trained on;
returns a GateResult (a verdict and one line saying why). `mcnemar` is the exact McNemar
test on the rows the two models disagree on (accuracy only); `bootstrap` gives any metric a
seeded paired bootstrap interval of the gain and a paired permutation p-value. Pure: no
MLflow, no files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from tasks.config import GateParams

Score = Callable[[np.ndarray, np.ndarray], float]
Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # truth, champion's and challenger's predictions

LOWER_IS_BETTER = ("mae", "mse")
CLASS_AVERAGED = ("precision", "recall", "f1")  # macro averages
METRICS = ("accuracy", *CLASS_AVERAGED, *LOWER_IS_BETTER, "r2")


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict; `difference` is positive when the challenger is better."""

    test: str
    metric: str
    p_value: float
    n_rows: int
    difference: float
    champion_score: float
    challenger_score: float
    interval: tuple[float, float] | None
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (the interval as a list)."""
        return {**asdict(self), "interval": list(self.interval) if self.interval else None}


def compare(
    truth: Any, champion_pred: Any, challenger_pred: Any, metric: str, rules: GateParams
) -> GateResult:
    """Test whether challenger_pred beats champion_pred on metric, row for row."""
    rules = resolve_test(rules, metric)
    name = _metric_name(metric, rules.test)
    rows = _aligned(truth, champion_pred, challenger_pred, name)
    champion_score, challenger_score = (_sklearn_score(name, rows[0], p) for p in rows[1:])
    sign = -1.0 if name in LOWER_IS_BETTER else 1.0
    difference = sign * (challenger_score - champion_score)
    if rules.test == "mcnemar":
        p_value, interval = _mcnemar(*rows), None
    else:
        p_value, interval = _resample(rows, _gain(name, rows, sign), rules)
    passed, verdict = _verdict(difference, p_value, interval, rules)
    scores = f"{metric} {difference:+.4f} ({challenger_score:.4f} vs {champion_score:.4f}"
    scores += ", lower is better)" if sign < 0 else ")"
    reason = f"{scores} on {len(rows[0])} shared rows, {_evidence(p_value, interval, rules)}"
    return GateResult(
        test=rules.test,
        metric=metric,
        p_value=p_value,
        n_rows=len(rows[0]),
        difference=difference,
        champion_score=champion_score,
        challenger_score=challenger_score,
        interval=interval,
        passed=passed,
        reason=f"{reason}: {verdict}",
    )


def resolve_test(rules: GateParams, metric: str) -> GateParams:
    """`auto`: the exact McNemar test for accuracy, the paired bootstrap for other metrics."""
    if rules.test != "auto":
        return rules
    test = "mcnemar" if metric == "accuracy" else "bootstrap"
    return rules.model_copy(update={"test": test})


def _metric_name(metric: str, test: str) -> str:
    """The base metric (`f1_macro` -> `f1`); refuse what the gate cannot compute."""
    name = metric.removesuffix("_macro")
    if name not in METRICS or (name != metric and name not in CLASS_AVERAGED):
        raise ValueError(f"the promotion gate cannot compute {metric!r}; use one of {METRICS}")
    if test == "mcnemar" and name != "accuracy":
        raise ValueError(f"the McNemar gate compares accuracy only, not {metric!r}")
    return name


def _aligned(truth: Any, champion: Any, challenger: Any, name: str) -> Rows:
    """Three equally long 1-D arrays; class labels encoded as 0..k-1, targets as floats."""
    arrays = [np.asarray(a).ravel() for a in (truth, champion, challenger)]
    if len({len(a) for a in arrays}) != 1 or len(arrays[0]) == 0:
        lengths = [len(a) for a in arrays]
        raise ValueError(f"truth and both predictions need one nonzero length, got {lengths}")
    if name in (*LOWER_IS_BETTER, "r2"):
        return arrays[0].astype(float), arrays[1].astype(float), arrays[2].astype(float)
    import pandas as pd

    # factorize, unlike np.unique, neither sorts (mixed types) nor tells 1 from 1.0
    codes, _ = pd.factorize(np.concatenate(arrays), use_na_sentinel=False)
    n = len(arrays[0])
    return codes[:n], codes[n : 2 * n], codes[2 * n :]


def _sklearn_score(name: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """The reported score, as sklearn.metrics (and so tasks.evaluate) computes it."""
    from sklearn import metrics

    if name in CLASS_AVERAGED:
        averaged = getattr(metrics, f"{name}_score")
        return float(averaged(truth, predicted, average="macro", zero_division=0))
    functions = {
        "accuracy": metrics.accuracy_score,
        "mae": metrics.mean_absolute_error,
        "mse": metrics.mean_squared_error,
        "r2": metrics.r2_score,
    }
    return float(functions[name](truth, predicted))


def fast_score(name: str, classes: int) -> Score:
    """The same score in plain NumPy: sklearn's checks cost ~0.4 ms a call, too slow to resample."""
    simple: dict[str, Score] = {
        "accuracy": lambda t, p: float(np.mean(t == p)),
        "mae": lambda t, p: float(np.mean(np.abs(t - p))),
        "mse": lambda t, p: float(np.mean((t - p) ** 2)),
        "r2": _r2,
    }
    return simple[name] if name in simple else partial(_macro, name=name, classes=classes)


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    residual, total = np.sum((truth - predicted) ** 2), np.sum((truth - truth.mean()) ** 2)
    if total == 0:  # sklearn's force_finite convention
        return 1.0 if residual == 0 else 0.0
    return float(1 - residual / total)


def _macro(truth: np.ndarray, predicted: np.ndarray, name: str, classes: int) -> float:
    """Macro precision/recall/F1 over the classes present in truth or predictions."""
    counts = np.bincount(truth * classes + predicted, minlength=classes * classes)
    confusion = counts.reshape(classes, classes)
    hits, guessed, actual = np.diag(confusion), confusion.sum(axis=0), confusion.sum(axis=1)
    denominator = {"precision": guessed, "recall": actual, "f1": (guessed + actual) / 2}[name]
    ratio = np.divide(hits, denominator, out=np.zeros(classes), where=denominator > 0)
    return float(ratio[(guessed + actual) > 0].mean())


def _gain(name: str, rows: Rows, sign: float) -> Callable[..., float]:
    """The statistic (challenger minus champion, positive = better) on a subset of rows."""
    classes = int(max(a.max() for a in rows)) + 1 if name in CLASS_AVERAGED else 0
    score = fast_score(name, classes)
    return lambda truth, champion, challenger: (
        sign * (score(truth, challenger) - score(truth, champion))
    )


def _mcnemar(truth: np.ndarray, champion: np.ndarray, challenger: np.ndarray) -> float:
    """Exact one-sided McNemar: of the rows one model alone gets right, has the challenger more?"""
    from scipy.stats import binomtest

    champion_right, challenger_right = champion == truth, challenger == truth
    wins = int(np.sum(challenger_right & ~champion_right))
    losses = int(np.sum(champion_right & ~challenger_right))
    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)


def _resample(
    rows: Rows, gain: Callable[..., float], rules: GateParams
) -> tuple[float, tuple[float, float]]:
    """Permutation p-value of the gain and its paired bootstrap (1 - 2 alpha) interval."""
    from scipy import stats

    common: dict[str, Any] = {"vectorized": False, "n_resamples": rules.resamples}
    interval = stats.bootstrap(
        rows,
        gain,
        paired=True,
        method="percentile",  # BCa's jackknife fails (NaN, warning) when every gain is equal
        confidence_level=1 - 2 * rules.alpha,
        rng=np.random.default_rng(rules.seed),
        **common,
    ).confidence_interval
    # Swapping a row's two predictions is what "no difference between the models" allows.
    null = stats.permutation_test(
        rows[1:],
        lambda champion, challenger: gain(rows[0], champion, challenger),
        permutation_type="samples",
        alternative="greater",
        rng=np.random.default_rng(rules.seed),
        **common,
    )
    return float(null.pvalue), (float(interval.low), float(interval.high))


def _verdict(
    difference: float, p_value: float, interval: tuple[float, float] | None, rules: GateParams
) -> tuple[bool, str]:
    """Passed, and in words: McNemar judges the gain, bootstrap its interval's lower end."""
    bound = difference if interval is None else interval[0]
    if interval is None:
        enough = bound >= rules.min_improvement
    else:
        enough = bound > rules.min_improvement
    if p_value < rules.alpha and bound > 0 and enough:
        return True, "better beyond chance"
    if difference <= 0:
        return False, "not better than the champion"
    if p_value >= rules.alpha or bound <= 0:
        return False, "not better beyond chance"
    what = "gain" if interval is None else "interval's lower end"
    return (
        False,
        f"{what} {bound:+.4f} below register.gate.min_improvement {rules.min_improvement:g}",
    )


def _evidence(p_value: float, interval: tuple[float, float] | None, rules: GateParams) -> str:
    p = f"p={p_value:.2g} {'<' if p_value < rules.alpha else '>='} {rules.alpha:g}"
    if interval is None:
        return f"McNemar exact {p}"
    low, high = interval
    level = f"{100 * (1 - 2 * rules.alpha):g}%"
    return f"paired bootstrap {level} interval [{low:+.4f}, {high:+.4f}], permutation {p}"
