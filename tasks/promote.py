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
from typing import Any

from tasks.config import Params, load_params
from tasks.registry import promote, rollback
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)


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
