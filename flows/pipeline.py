"""The retraining flow: every step of dvc.yaml as a Prefect task, in order.

Each task calls the same adapter as `python -m tasks.<step>`, skips itself when DVC says the
stage is up to date (content hashes of its deps, params and outs), and records what it
wrote in dvc.lock, so after a flow run `dvc status` is clean and `dvc repro` is a no-op.
After the data steps, `decide` (flows/decide.py) says whether the run retrains: it skips the
model steps when the only change is a few new rows without drift, and records why.

Run by `python -m flows.retrain` (flows/retrain.py), or by a work pool's worker
(`python -m flows.deploy`).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from prefect import State, flow, task
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from flows.decide import Decision, decide, record
from flows.publish import notify_failure, publish
from flows.stages import (
    DATA_STEPS,
    MODEL_STEPS,
    STEPS,
    check_services,
    record_stage,
    stage_is_current,
)
from flows.summary import summarize
from tasks.config import Params, load_params
from tasks.datafiles import forget_handed
from tasks.remote import push_outputs
from tasks.runtime import STEP_RETRY_DELAYS_S, UserError, is_transient, project_lock
from tasks.tracking import missing_record, stamp_records

log = logging.getLogger(__name__)


class _NoEmptyTraceback(logging.Filter):
    """Prefect logs a task that returned a Failed state with exc_info=True although nothing
    was raised, which prints a stray `NoneType: None` under the line; drop that part."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is None:
            record.exc_info = None
        return True


logging.getLogger("prefect.task_runs").addFilter(_NoEmptyTraceback())

TRACKED_STEPS = ("tune", "train")  # steps whose MLflow run is tagged with the flow run
NETWORK_STEPS = ("tune", "train", "evaluate", "register")  # they talk to the tracking server


def run_step(step: str, params: Params, tags: dict[str, str] | None = None) -> str | State:
    """Run one step unless DVC finds it current and the MLflow store holds its record;
    return 'ran' or 'skipped'. `tags` go on the MLflow run of the tracked steps.

    A user's mistake (bad data, bad params) fails the task with its one-line message
    instead of a traceback; a bug still raises.
    """
    if stage_is_current(step):
        missing = missing_record(params, step)
        if missing is None:
            log.info("%s: up to date (dvc.lock matches), skipped", step)
            # its own state name, so the Prefect UI tells skipped steps from those that ran
            return Completed(name="Skipped", message="up to date (dvc.lock)", data="skipped")
        log.info("%s: up to date for DVC, but %s: running it again", step, missing)
    adapter = importlib.import_module(f"tasks.{step}")
    try:
        if step in TRACKED_STEPS:
            adapter.run(
                params, tags={**(tags or {}), "prefect.flow_run_id": str(flow_run.id or "")}
            )
        else:
            adapter.run(params)
    except UserError as error:
        return Failed(message=f"{step}: {error}")
    record_stage(step)
    return "ran"


def _lost_connection(task: Any, task_run: Any, state: State) -> bool:
    """Retry a step only when it lost a service (a bug or a user's mistake fails at once)."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - the state's own exception, re-raised
        return is_transient(error)
    return False


def _step_task(step: str) -> Any:
    retried = step in NETWORK_STEPS
    return task(
        name=step,
        task_run_name=step,
        retries=len(STEP_RETRY_DELAYS_S) if retried else 0,
        retry_delay_seconds=STEP_RETRY_DELAYS_S if retried else 0.0,
        retry_condition_fn=_lost_connection if retried else None,
    )(run_step)


STEP_TASKS = {step: _step_task(step) for step in STEPS}
PUBLISH = task(name="publish", task_run_name="publish", retries=len(STEP_RETRY_DELAYS_S))(publish)


def decide_and_record(params: Params, force: bool) -> Decision:
    """Retrain or skip the model steps (flows/decide.py), recorded in the log and Prefect."""
    decision = decide(params, MODEL_STEPS, force)
    record(decision)
    return decision


DECIDE = task(name="decide", task_run_name="decide")(decide_and_record)


def _run_steps(
    steps: tuple[str, ...], params: Params, outcome: dict[str, str], tags: dict[str, str]
) -> State | None:
    """Run the steps in order into outcome; the failed state of the first that fails."""
    for step in steps:
        state = STEP_TASKS[step](step, params, tags, return_state=True)
        if state.is_failed():  # nothing after a failed step runs; the flow run is failed
            return Failed(message=state.message)
        outcome[step] = str(state.result())
    return None


@flow(name="retrain", on_failure=[notify_failure])
def retrain(force: bool = False) -> dict[str, Any] | State:
    """Retrain: ingest, validate, clean; decide; split, standardize, tune, train, evaluate,
    register. `force` retrains whatever the decision would have said. One run per checkout
    (the project lock), also when a work pool's worker runs it."""
    try:
        with project_lock():
            result = _retrain(force)
            if not isinstance(result, State):  # a successful run: its outputs to dvc.remote
                push_outputs(load_params())
    except UserError as error:
        return Failed(message=str(error))
    finally:
        forget_handed()  # a worker serving many runs keeps no table from one to the next
    if not isinstance(result, State):
        published = PUBLISH(result, return_state=True)
        if published.is_failed():  # the run did its work; only its Prefect summary is missing
            log.warning("publish: the run's artifacts were not published (%s)", published.message)
    return result


def _retrain(force: bool) -> dict[str, Any] | State:
    try:
        params = load_params()
        check_services(params)  # before any step changes anything
    except UserError as error:
        return Failed(message=str(error))
    outcome: dict[str, str] = {}
    failed = _run_steps(DATA_STEPS, params, outcome, {})
    if failed is not None:
        return failed
    decision = DECIDE(params, force, return_state=True)
    if decision.is_failed():
        return Failed(message=f"decide: {decision.message}")
    decided: Decision = decision.result()  # type: ignore[assignment]
    if not decided.retrain:
        skipped = outcome | dict.fromkeys(MODEL_STEPS, "skipped")
        return summarize(params, skipped, decided.retrain, decided.reason, str(flow_run.id or ""))
    failed = _run_steps(MODEL_STEPS, params, outcome, decided.tags())
    if failed is not None:
        return failed
    stamp_records(params)  # every step ran or had its record checked: a later no-op can trust it
    return summarize(params, outcome, decided.retrain, decided.reason, str(flow_run.id or ""))
