"""Task runners for trials (`tune.runner`): one by one, or in parallel through a Prefect task
runner (threads, processes, or a Dask cluster through prefect-dask).

Worker processes start once per search, each with its share of the cores for TensorFlow,
talk to this process's Prefect API rather than starting servers of their own, and
(`processes`) map the arrays from files written once instead of receiving them with every
trial.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tasks.config import TuneParams
from tasks.datafiles import Split
from tasks.runtime import SERVICE_TIMEOUT_S, UserError, reachable
from tasks.trials import (
    SPLIT_NAMES,
    TrialJob,
    TrialMap,
    TrialResult,
    run_sequentially,
    start_worker,
    train_trial,
    train_trial_remotely,
)

TRIAL_MODULE = train_trial_remotely.__module__  # what the scheduler and workers unpickle


@contextmanager
def _splits_on_disk(splits: tuple[Split, Split] | None) -> Iterator[str | None]:
    """The (train, val) arrays written once as .npy files, for process workers to map.

    Passing them as the workers' start-up arguments instead would make the parent wait for
    each worker to import Prefect before it can start the next (a spawned worker reads its
    arguments while unpickling them, and the arrays do not fit in the pipe's buffer).
    """
    if splits is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="tune-splits-") as folder:
        for name, split in zip(SPLIT_NAMES, splits, strict=True):
            np.save(Path(folder) / f"{name}-x.npy", split.x)
            np.save(Path(folder) / f"{name}-y.npy", split.y)
        yield folder


def _task_runner(tune: TuneParams, folder: str | None) -> Any:
    """The Prefect task runner `tune.runner` names; process workers map the splits in folder."""
    if tune.runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=tune.workers)
    if tune.runner == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(
            max_workers=tune.workers,
            initializer=start_worker,
            initargs=(max(1, _cores() // tune.workers), folder),
        )
    from prefect_dask import DaskTaskRunner

    if tune.dask_address:
        check_cluster(tune)
        return DaskTaskRunner(address=tune.dask_address)
    local = {"n_workers": tune.workers, "threads_per_worker": 1, "processes": True}
    return DaskTaskRunner(cluster_kwargs={**local, "dashboard_address": None})


def _scheduler_host(address: str) -> tuple[str | None, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    return parts.hostname, parts.port or 8786


def check_scheduler(address: str) -> None:
    """A Dask scheduler that does not accept connections is named in one line."""
    host, port = _scheduler_host(address)
    if not host or not reachable(host, port):
        raise UserError(
            f"the Dask scheduler {address} does not answer: start it (dask scheduler --host "
            f"{host} --port {port}), or set tune.dask_address: null for a local cluster"
        )


def check_cluster(tune: TuneParams) -> None:
    """The Dask cluster `tune.dask_address` names can run trials, or one line says what is
    missing: a scheduler that answers, this project importable there (the scheduler unpickles
    the trials too) and on every worker, and at least one worker. Nothing to check otherwise.
    """
    if tune.runner != "dask" or not tune.dask_address:
        return
    address = tune.dask_address
    check_scheduler(address)
    from distributed import Client

    try:
        with Client(address, timeout=SERVICE_TIMEOUT_S, set_as_default=False) as client:
            _check_workers(client, address, tune.workers)
    except OSError as error:  # it accepts connections, but does not speak Dask's protocol
        raise UserError(f"the Dask scheduler {address} does not answer: {error}") from None


def _check_workers(client: Any, address: str, workers: int) -> None:
    from importlib.util import find_spec

    start = f".venv/bin/dask worker {address} --nworkers {workers} --nthreads 1"
    try:
        lacking = [] if client.run_on_scheduler(find_spec, TRIAL_MODULE) else ["its scheduler"]
    except ImportError:
        lacking = ["its scheduler"]
    specs = client.run(find_spec, TRIAL_MODULE, on_error="return")
    lacking += [f"worker {worker}" for worker, spec in sorted(specs.items()) if not _found(spec)]
    if lacking:
        raise UserError(
            f"the Dask cluster {address} cannot import this project ({', '.join(lacking)}): "
            "install it there (uv sync) and start the scheduler and workers from that "
            f"environment ({start})"
        )
    if not specs:
        raise UserError(f"the Dask scheduler {address} has no workers: start some ({start})")


def _found(spec: Any) -> bool:
    """find_spec's answer names a module (not None, nor the error of a missing package)."""
    return spec is not None and not isinstance(spec, BaseException)


def _cores() -> int:
    return len(os.sched_getaffinity(0))  # the cores this process may use, not the machine's


def worker_threads(tune: TuneParams) -> int | None:
    """TF threads per trial set by the job: a local Dask worker's share of the cores (None:
    in-process runners keep TF's default, process workers set theirs when they start)."""
    if tune.runner != "dask" or tune.dask_address:
        return None
    return max(1, _cores() // tune.workers)


def _on_this_host(tune: TuneParams) -> bool:
    """Whether the trials' workers run on this machine (a local cluster, or a scheduler that
    listens on the loopback only), so that they reach this process's 127.0.0.1."""
    if not tune.dask_address:
        return True
    host, _ = _scheduler_host(tune.dask_address)
    return host in ("127.0.0.1", "localhost", "::1")


@contextmanager
def _shared_prefect_api() -> Iterator[None]:
    """Point the runner's workers at this process's Prefect API.

    Without PREFECT_API_URL, every worker process would start a temporary Prefect server of
    its own before its first trial (about 6 s each, plus a server process per worker taking
    CPU from the trials); the URL travels to the workers in the runner's settings context.
    Not for a Dask cluster on other machines, whose workers may not reach this 127.0.0.1.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    # starts this process's temporary server if need be; the client is only asked its URL
    url = str(get_client(sync_client=True).api_url).rstrip("/")
    with temporary_settings({PREFECT_API_URL: url}):
        yield


@contextmanager
def open_runner(tune: TuneParams, splits: tuple[Split, Split] | None = None) -> Iterator[TrialMap]:
    """A TrialMap for `tune.runner`, kept open across halving rungs (workers start once).

    With `processes`, each worker process receives `splits` once when it starts, and jobs on
    those very splits are sent without their arrays.
    """
    if tune.runner == "sequential":
        yield run_sequentially
        return
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    remote = tune.runner != "threads"
    trial = train_trial_remotely if remote else train_trial
    trial_task = task(name="tune-trial", cache_policy=NO_CACHE)(trial)
    held = splits if tune.runner == "processes" else None
    with (
        _shared_prefect_api() if _on_this_host(tune) else nullcontext(),
        _splits_on_disk(held) as folder,
        _task_runner(tune, folder) as runner,
    ):

        def run_parallel(jobs: list[TrialJob]) -> list[TrialResult]:
            light = [replace(j, splits=None) if held and j.splits is held else j for j in jobs]
            futures = [runner.submit(trial_task, parameters={"job": job}) for job in light]
            return [future.result() for future in futures]

        yield run_parallel
