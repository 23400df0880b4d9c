"""drift: has the data moved away from the rows the champion was trained on?

Reads two in-memory datasets, the reference (the champion's training rows) and the current
data, as tables or Arrays; returns a JSON-ready report of one test per feature and for the
label (numbers: Kolmogorov-Smirnov; categories: chi-squared; both with the population
stability index, PSI), the retrain decision in one line, and the report as HTML or a figure.
Images and sequences are compared through per-sample summaries (mean, std, min, max).
Pure: no files, no MLflow.
"""

from __future__ import annotations

import html
from typing import Any, Literal

import numpy as np
import pandas as pd

from tasks.config import DriftParams
from tasks.datafiles import Arrays, Data, labels_of

BINS = 10  # PSI's quantile bins of the reference
EPSILON = 1e-4  # the share given to an empty bin, so PSI stays finite
SUMMARIES = ("mean", "std", "min", "max")
SHOWN = 5  # drifted names written out in a reason; the rest are counted


def detect_drift(
    reference: Data,
    current: Data,
    label: str,
    rules: DriftParams,
    task: Literal["classification", "regression"] = "classification",
) -> dict[str, Any]:
    """Test every feature and the label; `drift` when any is both significant and large."""
    before, after = feature_table(reference, label), feature_table(current, label)
    missing = [name for name in before.columns if name not in after.columns]
    if missing:
        raise ValueError(f"the current data lacks the reference's columns {missing}")
    tested = sorted((_test(n, before[n], after[n], rules) for n in before.columns), key=_rank)
    label_kind = "categorical" if task == "classification" else "numeric"
    old, new = (pd.Series(labels_of(data, label)) for data in (reference, current))
    target = _test(label, old, new, rules, label_kind)
    drifted = [entry for entry in tested if entry["drifted"]]
    return {
        "rows": {"reference": len(reference), "current": len(current)},
        "features": tested[: rules.max_features],
        "features_tested": len(tested),
        "label": target,
        "drifted_features": [entry["feature"] for entry in drifted],
        "drift": bool(drifted) or target["drifted"],
        "reason": _reason(drifted, target, len(tested), rules),
    }


def feature_table(data: Data, label: str) -> pd.DataFrame:
    """The features to compare: a table's columns but the label; per-sample summaries of Arrays."""
    if not isinstance(data, Arrays):
        return data.drop(columns=label)
    flat = data.x.reshape(len(data.x), -1)
    return pd.DataFrame(
        {
            "mean": flat.mean(axis=1, dtype=np.float64),
            "std": flat.std(axis=1, dtype=np.float64),
            "min": flat.min(axis=1).astype(np.float64),
            "max": flat.max(axis=1).astype(np.float64),
        }
    )


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins."""
    expected = np.maximum(reference_counts / reference_counts.sum(), EPSILON)
    actual = np.maximum(current_counts / current_counts.sum(), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float:
    """PSI over the reference's quantile bins, plus one bin below and one above its range.

    Bins are closed on the right and tied quantiles merge, so a constant reference still
    splits current values into below, equal and above it."""
    levels = np.quantile(reference, np.linspace(0, 1, bins + 1))
    edges = np.unique(levels[1:-1])

    def counts(values: np.ndarray) -> np.ndarray:
        index = np.searchsorted(edges, values, side="left") + 1
        index[values < levels[0]] = 0
        index[values > levels[-1]] = len(edges) + 2
        return np.bincount(index, minlength=len(edges) + 3)

    return psi(counts(reference), counts(current))


def category_table(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """Counts per category (rows) in the reference and current columns; missing is a category."""
    both = [s.astype(object).value_counts(dropna=False) for s in (reference, current)]
    table = pd.concat(both, axis=1).fillna(0).set_axis(["reference", "current"], axis=1)
    return table[table.sum(axis=1) > 0]


def _kind(column: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    return "numeric" if numeric else "categorical"


def _test(
    name: str, reference: pd.Series, current: pd.Series, rules: DriftParams, kind: str = ""
) -> dict[str, Any]:
    """One feature's entry: its test, statistic, p-value, PSI and whether it drifted."""
    from scipy import stats

    kind = kind or _kind(reference)
    if kind == "numeric":
        before, after = (s.dropna().to_numpy(dtype=float) for s in (reference, current))
        if not (len(before) and len(after)):
            raise ValueError(f"column {name!r} has no values to compare")
        test, result, size = "ks", stats.ks_2samp(before, after), numeric_psi(before, after)
    else:
        counts = category_table(reference, current).to_numpy(dtype=float).T
        test, result, size = "chi2", stats.chi2_contingency(counts), psi(counts[0], counts[1])
    statistic, p_value = float(result.statistic), float(result.pvalue)
    drifted = p_value < rules.alpha and size >= rules.psi
    return {
        "feature": name,
        "kind": kind,
        "test": test,
        "statistic": statistic,
        "p_value": p_value,
        "psi": size,
        "drifted": drifted,
    }


def _rank(entry: dict[str, Any]) -> tuple[bool, float, float]:
    """Drifted first, then the largest PSI, then the smallest p-value."""
    return (not entry["drifted"], -entry["psi"], entry["p_value"])


def _p(p_value: float) -> str:
    return "p<1e-9" if p_value < 1e-9 else f"p={p_value:.2g}"


def _reason(
    drifted: list[dict[str, Any]], target: dict[str, Any], tested: int, rules: DriftParams
) -> str:
    changed = [*drifted, target] if target["drifted"] else drifted
    if not changed:
        needed = f"p < {rules.alpha:g} and psi >= {rules.psi:g}"
        return f"no drift in {tested} features or the label ({needed} needed)"
    names = [e["feature"] + (" (label)" if e is target else "") for e in changed]
    listed = ", ".join(names[:SHOWN]) + (
        f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    )
    top = max(changed, key=lambda entry: entry["psi"])
    return f"drift in {listed} ({top['feature']}: psi {top['psi']:.2f}, {_p(top['p_value'])})"


def decide_retrain(
    report: dict[str, Any] | None,
    new_rows: int,
    reference_rows: int,
    rules: DriftParams,
    force: bool = False,
) -> tuple[bool, str]:
    """Retrain when forced, with no champion yet, with enough new (or relabelled) rows, or
    on drift; `new_rows` counts the rows the champion never saw or saw with another label."""
    if force:
        return True, "retrain: forced"
    if report is None:
        return True, "retrain: no champion yet"
    growth = new_rows / reference_rows if reference_rows > 0 else float("inf")
    share = f"{new_rows} new or relabelled rows ({growth:.1%}"
    limit = f"{rules.min_new_rows * 100:g}%)"
    drift = f"; {report['reason']}" if report["drift"] else ""
    if growth >= rules.min_new_rows:
        return True, f"retrain: {share} >= {limit}{drift}"
    if report["drift"]:
        return True, f"retrain: {report['reason']}"
    return False, f"skip: {share} < {limit} and no drift"


def render_html(report: dict[str, Any]) -> str:
    """A small self-contained HTML page: one row per feature and the label, drifted first."""
    entries = sorted([*report["features"], {**report["label"], "role": "label"}], key=_rank)
    rows = "".join(
        "<tr class='{}'>{}</tr>".format(
            "fail" if e["drifted"] else "ok",
            "".join(f"<td>{html.escape(str(cell))}</td>" for cell in _cells(e)),
        )
        for e in entries
    )
    rows_line = "{reference} reference rows, {current} current rows".format(**report["rows"])
    shown = f"{len(report['features'])} of {report['features_tested']} features shown"
    verdict = "Drift" if report["drift"] else "No drift"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Data drift</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px}"
        "table{border-collapse:collapse}.fail{background:#fdd}.ok{background:#efe}</style>"
        f"</head><body><h1>Data drift</h1><p>{verdict}: {html.escape(report['reason'])}.</p>"
        f"<p>{rows_line}; {shown}.</p>"
        "<table><tr><th>result</th><th>feature</th><th>kind</th><th>test</th>"
        f"<th>statistic</th><th>p-value</th><th>PSI</th></tr>{rows}</table></body></html>\n"
    )


def _cells(entry: dict[str, Any]) -> list[str]:
    name = entry["feature"] + (" (label)" if entry.get("role") == "label" else "")
    return [
        "drift" if entry["drifted"] else "ok",
        name,
        entry["kind"],
        entry["test"],
        f"{entry['statistic']:.4g}",
        f"{entry['p_value']:.3g}",
        f"{entry['psi']:.3f}",
    ]


def plot_drift(reference: Data, current: Data, report: dict[str, Any], label: str) -> Any:
    """Reference and current distributions of the (up to) four most drifted features."""
    from tasks.figures import _pyplot

    plt = _pyplot()
    before, after = feature_table(reference, label), feature_table(current, label)
    entries = report["features"][:4]
    figure, axes = plt.subplots(1, max(len(entries), 1), figsize=(4 * max(len(entries), 1), 3.5))
    for axis, entry in zip(np.atleast_1d(axes), entries, strict=False):
        name = entry["feature"]
        _draw(axis, before[name], after[name], entry["kind"])
        axis.set_title(
            f"{name}: psi {entry['psi']:.2f}", color="red" if entry["drifted"] else "black"
        )
    figure.suptitle(f"{'Drift' if report['drift'] else 'No drift'}: reference vs current")
    figure.tight_layout()
    return figure


def _draw(axis: Any, reference: pd.Series, current: pd.Series, kind: str) -> None:
    if kind == "numeric":
        before, after = (s.dropna().to_numpy(dtype=float) for s in (reference, current))
        edges = np.histogram_bin_edges(np.concatenate([before, after]), bins=20)
        axis.hist(before, bins=edges, density=True, alpha=0.5, label="reference")
        axis.hist(after, bins=edges, density=True, alpha=0.5, label="current")
    else:
        table = category_table(reference, current)
        (table / table.sum()).plot.bar(ax=axis, alpha=0.7)
    axis.legend()
