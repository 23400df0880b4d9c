"""register: register the trained bundle and move `@champion` only forward.

Reads `paths.model/run.json`, `reports/metrics.json` and `paths.split/test`; writes
`reports/registry.json`. The new version always gets `@challenger`. It becomes `@champion`
only if it passes `register.thresholds` and beats the current champion, scored again on the
same test split, by at least `register.min_improvement` on `register.metric`. The decision,
both scores and the reason are recorded as tags on the version.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from tasks.config import Params, RegisterParams, load_params
from tasks.datafiles import labels_of, read_data, read_json, write_json
from tasks.metrics import minimize, score_frame
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    score: float
    champion_score: float | None


def decide(
    scores: dict[str, float], champion_score: float | None, rules: RegisterParams
) -> Decision:
    """Whether a challenger with these test scores replaces a champion with champion_score."""
    if rules.metric not in scores:
        raise UserError(f"register.metric {rules.metric!r} is not one of {sorted(scores)}")
    score = scores[rules.metric]
    for name, threshold in rules.thresholds.items():
        value = scores.get(name, math.nan)
        worse = value > threshold if minimize(name) else value < threshold
        if math.isnan(value) or worse:
            return Decision(
                False, f"{name}={value:.4f} misses threshold {threshold}", score, champion_score
            )
    if champion_score is None:
        return Decision(True, "first model that passes the thresholds", score, None)
    gain = champion_score - score if minimize(rules.metric) else score - champion_score
    if gain > 0 and gain >= rules.min_improvement:
        return Decision(
            True, f"beats champion by {gain:.4f} on {rules.metric}", score, champion_score
        )
    needed = (
        f"more than {rules.min_improvement}"
        if rules.min_improvement <= 0
        else (f"at least {rules.min_improvement}")
    )
    return Decision(
        False,
        f"{rules.metric} {score:.4f} vs champion's {champion_score:.4f} on today's test split: "
        f"a gain of {gain:.4f}, {needed} needed",
        score,
        champion_score,
    )


def _champion_score(client: Any, params: Params) -> tuple[str | None, float | None]:
    """The current champion's version and its score on today's test split."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tasks.bundle import raw_features

    name = params.register_.model_name
    try:
        version = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None, None
    test = read_data(params.paths.split, "test")
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    predictions = model.predict(raw_features(test, params.dataset.label))
    scores = score_frame(
        labels_of(test, params.dataset.label), predictions, params.dataset.task, params.evaluate
    )
    return version.version, scores.get(params.register_.metric)


def run(params: Params) -> dict[str, Any]:
    """Register the model as a new version; promote it to @champion when it earns it."""
    import mlflow
    from mlflow import MlflowClient

    from tasks.registry import champion_history, crown
    from tasks.tracking import start_tracking

    start_tracking(params)
    client = MlflowClient()
    summary = read_json(params.paths.model / "run.json")
    scores = read_json(params.paths.reports / "metrics.json")
    champion_version, champion_score = _champion_score(client, params)
    decision = decide(scores, champion_score, params.register_)
    name = params.register_.model_name
    version = mlflow.register_model(summary["model_uri"], name).version
    client.set_registered_model_alias(name, "challenger", version)
    if decision.promote:
        crown(client, name, version, [*champion_history(client, name), str(version)])
    for key, value in asdict(decision).items():
        client.set_model_version_tag(name, version, f"promotion.{key}", str(value))
    verdict = "Promoted to @champion" if decision.promote else "Not promoted"
    client.update_model_version(name, version, description=f"{verdict}: {decision.reason}.")
    record = {
        "model_name": name,
        "version": int(version),
        "run_id": summary["mlflow_run_id"],
        "previous_champion": champion_version,
        **asdict(decision),
        "champion": int(version) if decision.promote else champion_version,
    }
    write_json(params.paths.reports / "registry.json", record)
    log.info(
        "register: %s version %s %s (%s)",
        name,
        version,
        "is @champion" if decision.promote else "stays @challenger",
        decision.reason,
    )
    return record


def main() -> None:
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.register")
