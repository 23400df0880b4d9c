"""promote: move `@champion` by hand, to a named version or back to the previous champion.

    python -m tasks.promote --version 3 --reason "hotfix model, checked by hand"
    python -m tasks.promote --rollback --reason "v4 misbehaves on Monday's traffic"

Who (`--by`, default the login name), why, when and what moved are recorded as tags on the
version that becomes champion, and the line of champions is kept in the registered model's
`champion.history` tag (oldest first), so a rollback returns to the one before the current
champion and repeated rollbacks walk further back. The pipeline's own `register` step
appends to the same history when a model earns the title. Nothing under `reports/` changes:
those files are DVC outputs of the pipeline, and the registry is the record of this command.
"""

from __future__ import annotations

import argparse
import getpass
import logging
from datetime import UTC, datetime
from typing import Any

from tasks.config import Params, load_params
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)

HISTORY_TAG = "champion.history"


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


def run(params: Params, args: argparse.Namespace) -> dict[str, Any]:
    """Promote or roll back in the project's registry, as the command line asks."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tasks.tracking import start_tracking

    start_tracking(params)
    client = MlflowClient()
    name = args.model or params.register_.model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise UserError(f"no registered model {name!r} in the registry") from None
    if args.rollback:
        record = rollback(client, name, args.reason, args.by)
    else:
        record = promote(client, name, str(args.version), args.reason, args.by)
    log.info(
        "%s: %s v%s is @champion (was v%s) by %s: %s",
        record["action"],
        name,
        record["champion"],
        record["previous_champion"],
        record["by"],
        record["reason"],
    )
    return record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Move @champion by hand, recording who and why.")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", type=int, help="the version to make @champion")
    target.add_argument("--rollback", action="store_true", help="back to the previous champion")
    parser.add_argument("--reason", required=True, help="why (recorded in the registry)")
    parser.add_argument("--by", default=getpass.getuser(), help="who (default: login name)")
    parser.add_argument("--model", help="registered model (default: register.model_name)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run(load_params(), parse_args(argv))


if __name__ == "__main__":
    run_entry("tasks.promote")
