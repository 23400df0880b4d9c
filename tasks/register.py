"""register: register the trained bundle and move `@champion` only forward, on evidence.

Reads `paths.model/run.json`, `reports/metrics.json` and `paths.split/{test,manifest.json}`;
writes `reports/registry.json`. The new version always gets `@challenger`. It becomes
`@champion` only if it passes `register.thresholds` and beats the current champion beyond
chance (`register.gate`: an exact McNemar test, or a paired bootstrap) on the same rows, rows
neither of them trained or tuned on: today's test rows less the champion's own training and
validation rows (from the manifest logged with its run). The first model is promoted on the
thresholds alone. The decision, the test, its p-value and the rows are recorded as tags on
the version and in `reports/registry.json`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from tasks.config import GateParams, Params, RegisterParams, load_params
from tasks.datafiles import Arrays, labels_of, read_data, read_json, write_json
from tasks.gate import GateResult, resolve_test
from tasks.metrics import minimize
from tasks.runtime import UserError, no_options, run_entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    score: float
    champion_score: float | None


def missed_threshold(scores: dict[str, float], rules: RegisterParams) -> str | None:
    """The first of `register.thresholds` the test scores miss, in words; None if none."""
    if rules.metric not in scores:
        raise UserError(f"register.metric {rules.metric!r} is not one of {sorted(scores)}")
    for name, threshold in rules.thresholds.items():
        value = scores.get(name, math.nan)
        worse = value > threshold if minimize(name) else value < threshold
        if math.isnan(value) or worse:
            return f"{name}={value:.4f} misses threshold {threshold}"
    return None


def decide(scores: dict[str, float], gate: GateResult | None, rules: RegisterParams) -> Decision:
    """Whether a challenger with these test scores becomes champion, given the gate's verdict
    on the rows it shares with the champion (None: there is no champion yet)."""
    score = scores.get(rules.metric, math.nan)
    missed = missed_threshold(scores, rules)
    champion_score = gate.champion_score if gate else None
    if missed:
        return Decision(False, missed, score, champion_score)
    if gate is None:
        return Decision(True, "first model that passes the thresholds", score, None)
    return Decision(gate.passed, gate.reason, score, champion_score)


def shared_rows(params: Params, champion_manifest: dict[str, Any] | None) -> Any:
    """Positions of today's test rows that the champion neither trained nor tuned on."""
    import numpy as np

    test_keys = read_json(params.paths.split / "manifest.json")["test"]["keys"]
    if champion_manifest is None:
        return np.arange(len(test_keys))
    seen = set(champion_manifest["train"]["keys"]) | set(champion_manifest["val"]["keys"])
    return np.array([i for i, key in enumerate(test_keys) if key not in seen], dtype=int)


def run_gate(client: Any, params: Params, champion: Any) -> GateResult:
    """Score champion and challenger on the rows neither trained on; test the difference."""
    import mlflow

    from tasks.bundle import load_network, network_file, predict_rows, raw_features
    from tasks.gate import compare
    from tasks.preprocessing import load_preprocessor
    from tasks.registry import champion_manifest

    rules, metric = params.register_.gate, params.register_.metric
    manifest = champion_manifest(client, champion.run_id)
    if manifest is None:
        log.warning("register: v%s's run logged no split manifest; all test rows", champion.version)
    rows = shared_rows(params, manifest)
    if len(rows) == 0:
        return _nothing_to_compare(rules, metric)
    test = read_data(params.paths.split, "test")
    features = raw_features(test, params.dataset.label)
    features = features[rows] if isinstance(test, Arrays) else features.iloc[rows]
    truth = labels_of(test, params.dataset.label)[rows]
    champion_uri = f"models:/{params.register_.model_name}/{champion.version}"
    champion_says = mlflow.pyfunc.load_model(champion_uri).predict(features)["prediction"]
    # the challenger's bundle is these very files, already here: no round trip to the store
    network = load_network(network_file(params.paths.model))
    preprocessor = load_preprocessor(params.paths.preprocessor)
    challenger_says = predict_rows(network, preprocessor, features)["prediction"]
    try:
        return compare(truth, champion_says.to_numpy(), challenger_says.to_numpy(), metric, rules)
    except ValueError as error:
        raise UserError(f"register.gate: {error}") from None


def _nothing_to_compare(rules: GateParams, metric: str) -> GateResult:
    """The champion trained on every test row (split.seed or fractions changed): no evidence."""
    reason = "no test rows that the champion did not train or tune on: nothing to compare on"
    test = resolve_test(rules, metric).test
    nan = math.nan
    return GateResult(test, metric, nan, 0, nan, nan, nan, None, False, reason)


def lineage_of(client: Any, run_id: str) -> dict[str, str]:
    """What made the version: its run's lineage tags, and every md5 in dvc.lock now that the
    stages before register are recorded there."""
    from tasks.lineage import pipeline_md5s

    kept = ("lineage.", "dvc.md5.", "mlflow.source.git.commit", "prefect.flow_run_id")
    tags = client.get_run(run_id).data.tags
    return {k: v for k, v in tags.items() if k.startswith(kept)} | pipeline_md5s()


def version_tags(decision: Decision, gate: Any, lineage: dict[str, str]) -> dict[str, str]:
    """Every tag of the new version: the promotion decision, the gate's test, the lineage."""
    tags = {f"promotion.{key}": str(value) for key, value in asdict(decision).items()}
    tags |= {f"gate.{key}": str(value) for key, value in (gate.as_dict() if gate else {}).items()}
    return tags | lineage


def versioned_name(client: Any, run_id: str, version: str) -> str:
    """`train v3 · cnn lr=0.002 drop=0.25 · digits`: the run named for the version it became."""
    name = client.get_run(run_id).info.run_name or "train"
    return (
        name.replace("train · ", f"train v{version} · ", 1) if name.startswith("train · ") else name
    )


def run(params: Params) -> dict[str, Any]:
    """Register the model as a new version; promote it to @champion when it earns it."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    from tasks.registry import champion_history, crown, current_champion
    from tasks.tracking import start_tracking

    start_tracking(params)
    client, name = MlflowClient(), params.register_.model_name
    summary = read_json(params.paths.model / "run.json")
    scores = read_json(params.paths.reports / "metrics.json")
    missed_threshold(scores, params.register_)  # a bad register.metric stops here
    champion = current_champion(client, name)
    gate = run_gate(client, params, champion) if champion else None
    decision = decide(scores, gate, params.register_)
    lineage = lineage_of(client, summary["mlflow_run_id"])
    # the version is created with all its tags in one call, and aliases come last: a failure
    # on the way never leaves an untagged version, nor an alias on a half-made one
    tags = version_tags(decision, gate, lineage)
    with contextlib.redirect_stderr(io.StringIO()) as said:  # MLflow prints, not logs, these
        version = mlflow.register_model(summary["model_uri"], name, tags=tags).version
    log.debug("register: MLflow said %s", said.getvalue().strip())
    verdict = "Promoted to @champion" if decision.promote else "Not promoted"
    client.update_model_version(name, version, description=f"{verdict}: {decision.reason}.")
    # one alias per version, so the UI's model list shows the champion at a glance:
    # @champion for a version that won, @challenger for the latest one that did not
    if decision.promote:
        crown(client, name, version, [*champion_history(client, name), str(version)])
    else:
        client.set_registered_model_alias(name, "challenger", version)
    run_tags = {
        **lineage,
        "mlflow.runName": versioned_name(client, summary["mlflow_run_id"], version),
    }
    client.log_batch(summary["mlflow_run_id"], tags=[RunTag(k, v) for k, v in run_tags.items()])
    previous = champion.version if champion else None
    record = {
        "model_name": name,
        "version": int(version),
        "run_id": summary["mlflow_run_id"],
        "previous_champion": previous,
        **asdict(decision),
        "gate": gate.as_dict() if gate else None,
        "champion": int(version) if decision.promote else previous,
    }
    write_json(params.paths.reports / "registry.json", record)
    state = "is @champion" if decision.promote else "stays @challenger"
    log.info("register: %s version %s %s (%s)", name, version, state, decision.reason)
    return record


def main() -> None:
    no_options(__name__, __doc__)
    run(load_params())


if __name__ == "__main__":
    run_entry("tasks.register")
