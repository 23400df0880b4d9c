"""The registry's champion line: who holds `@champion`, and moving it forward (register's
gate, or `python -m tasks.promote` by hand) or back (a rollback), recorded on the versions.

The line of champions is kept in the registered model's `champion.history` tag (oldest
first), so a rollback returns to the one before the current champion and repeated rollbacks
walk further back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.datafiles import read_json
from tasks.runtime import UserError

HISTORY_TAG = "champion.history"


def model_uri(name: str, version: int | None = None) -> str:
    """`models:/<name>/<version>`, or `models:/<name>@champion` when no version is named."""
    return f"models:/{name}/{version}" if version else f"models:/{name}@champion"


def champion_history(client: Any, name: str) -> list[str]:
    """Versions that held `@champion`, oldest first; the last one holds it now."""
    from mlflow.exceptions import MlflowException

    model = client.get_registered_model(name)
    history = [v for v in model.tags.get(HISTORY_TAG, "").split(",") if v]
    try:
        current = client.get_model_version_by_alias(name, "champion").version
    except MlflowException:
        return history
    # the alias may have been moved outside these commands: the alias is the truth
    return history if history and history[-1] == str(current) else [*history, str(current)]


def crown(client: Any, name: str, version: str, history: list[str]) -> None:
    """Give `version` the `@champion` alias and record the history it ends."""
    client.set_registered_model_alias(name, "champion", version)
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(history))


def _version_exists(client: Any, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise UserError(f"{name} has no version {version}") from None


def promote(client: Any, name: str, version: str, reason: str, by: str) -> dict[str, Any]:
    """Make `version` the champion by hand."""
    _version_exists(client, name, version)
    history = champion_history(client, name)
    if history and history[-1] == version:
        raise UserError(f"{name} v{version} is already @champion")
    return _record(
        client, name, version, [*history, version], action="promote", reason=reason, by=by
    )


def rollback(client: Any, name: str, reason: str, by: str) -> dict[str, Any]:
    """Give `@champion` back to the version that held it before the current one."""
    history = champion_history(client, name)
    if len(history) < 2:
        raise UserError(f"{name} has no previous champion to roll back to (history {history})")
    return _record(client, name, history[-2], history[:-1], action="rollback", reason=reason, by=by)


def _record(
    client: Any, name: str, version: str, history: list[str], *, action: str, reason: str, by: str
) -> dict[str, Any]:
    if not reason.strip():
        raise UserError("--reason must say why (it is recorded in the registry)")
    previous = champion_history(client, name)
    crown(client, name, version, history)
    record = {
        "action": action,
        "by": by,
        "reason": reason,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous_champion": previous[-1] if previous else "none",
    }
    for key, value in record.items():
        client.set_model_version_tag(name, version, f"manual.{key}", value)
    return {"model_name": name, "champion": int(version), **record}


def champion_manifest(client: Any, run_id: str) -> dict[str, Any] | None:
    """The split manifest logged with the champion's run (None for a run without one)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="split/manifest.json", tracking_uri=client.tracking_uri
        )
    except (MlflowException, OSError):  # a run from before keyed splits
        return None
    return read_json(Path(path))


def current_champion(client: Any, name: str) -> Any:
    """The model version holding `@champion`, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None
