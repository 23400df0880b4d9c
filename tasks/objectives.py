"""What each task's models and steps produce, so params.yaml can be held to it on load.

The curves Keras and the MLP log (`tasks/models.py`, `tasks/sklearn_mlp.py`), the scores
`evaluate` writes (`tasks/metrics.py`) and those the promotion gate can compare
(`tasks/gate.py`); `tests/test_config.py` holds these tables to those modules. Regression's
own defaults replace the (classification) defaults of the keys a user leaves out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

CURVES = {
    "classification": ("val_accuracy", "val_loss", "accuracy", "loss"),
    "regression": ("val_loss", "val_mae", "loss", "mae"),
}
GATE_METRICS = {
    "classification": ("accuracy", "precision", "recall", "f1")
    + ("precision_macro", "recall_macro", "f1_macro"),
    "regression": ("r2", "mae", "mse"),
}
SCORES = {
    "classification": GATE_METRICS["classification"]
    + ("precision_weighted", "recall_weighted", "f1_weighted", "roc_auc"),
    "regression": GATE_METRICS["regression"],
}
# regression's own values for the keys a user leaves out (the class defaults are
# classification's: val_accuracy, accuracy, no thresholds)
TASK_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "regression": {"tune": {"metric": "val_loss"}, "register": {"metric": "r2", "thresholds": {}}},
}


def _given(section: Any) -> dict[str, Any] | None:
    """The keys a user set in a section: a raw mapping, or a built section's fields_set."""
    if isinstance(section, BaseModel):
        return section.model_dump(exclude_unset=True)
    if section is None or isinstance(section, dict):
        return dict(section or {})
    return None  # not a mapping: left for the section's own validation to refuse


def with_task_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """raw with the task's defaults filled in where the user set nothing."""
    dataset = _given(raw.get("dataset")) or {}
    updated = dict(raw)
    for name, defaults in TASK_DEFAULTS.get(dataset.get("task", ""), {}).items():
        given = _given(raw.get(name))
        if given is not None:
            updated[name] = {**defaults, **given}
    return updated


def tune_metrics(task: str, model_type: str) -> tuple[str, ...]:
    """The curves tune can score a trial on (the MLP's grid search also scores MSE)."""
    extra = ("val_mse", "mse") if task == "regression" and model_type == "sklearn_mlp" else ()
    return CURVES[task] + extra
