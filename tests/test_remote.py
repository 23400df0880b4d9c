"""A DVC remote (`dvc.remote`): a successful run pushes every DVC-tracked output to it, a
fresh clone pulls them and has nothing to run, and a remote that cannot take the push stops
a run in one line before anything changes."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.lineage import file_md5
from tasks.remote import _endpoint
from tasks.runtime import free_port
from tests.conftest import FAST_PARAMS, make_project, run_cli, update_params

PUSHED = re.compile(r"pushed (\d+) files to local")


@pytest.mark.parametrize(
    ("config", "endpoint"),
    [
        ({"url": "s3://bucket/path"}, ("s3.amazonaws.com", 443)),
        ({"url": "s3://bucket/path", "endpointurl": "http://minio:9000"}, ("minio", 9000)),
        ({"url": "https://example.com/dvc"}, ("example.com", 443)),
        ({"url": "ssh://user@host/srv/dvc", "port": 2222}, ("host", 2222)),
        ({"url": "/srv/dvc-store"}, None),
    ],
)
def test_a_network_remote_is_checked_where_it_is_reached(
    config: dict[str, Any], endpoint: tuple[str, int] | None
) -> None:
    assert _endpoint(config) == endpoint


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A project run once by the flow with `dvc.remote: local`, a folder: (project, the
    remote's folder, the run's log)."""
    root = tmp_path_factory.mktemp("remote")
    store = root / "store"
    store.mkdir()
    project = make_project(root / "project", {**FAST_PARAMS, "dvc": {"remote": "local"}})
    run_cli(["dvc", "remote", "add", "-d", "local", str(store)], project)
    result = run_cli(["python", "-m", "flows.retrain"], project)
    run_cli(["git", "add", "-A"], project)  # dvc.lock, reports/, .dvc/config: what git keeps
    run_cli(["git", "commit", "-q", "-m", "a run, its outputs in the DVC remote"], project)
    return project, store, result.stdout + result.stderr


def _outputs(project: Path) -> dict[str, tuple[str, bool]]:
    """Every output of dvc.yaml: its md5 in dvc.lock, and whether the DVC cache (and so the
    remote) keeps it; the others (`cache: false`, the reports) are kept by git."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        return {str(o.def_path): (o.hash_info.value, o.use_cache) for o in repo.index.outs}


def _in_store(store: Path, md5: str) -> bool:
    return (store / "files" / "md5" / md5[:2] / md5[2:]).is_file()


@pytest.mark.slow
def test_a_successful_run_pushes_every_output(pushed: tuple[Path, Path, str]) -> None:
    project, store, log = pushed
    counts = [int(n) for n in PUSHED.findall(log)]
    assert len(counts) == 1 and counts[0] > 0, log[-3000:]
    cached = {path: md5 for path, (md5, cache) in _outputs(project).items() if cache}
    assert {"data/raw", "data/split", "models/model", "models/preprocessor.skops"} <= set(cached)
    assert all(_in_store(store, md5) for md5 in cached.values())


def _assert_matches_the_lock(clone: Path, path: str, md5: str) -> None:
    """The output has the md5 dvc.lock records; a cached folder, each of its files their own."""
    if not md5.endswith(".dir"):
        assert file_md5(clone / path) == md5, path
        return
    manifest = clone / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    entries = json.loads(manifest.read_text())
    files = [p for p in (clone / path).rglob("*") if p.is_file()]
    assert sorted(e["relpath"] for e in entries) == sorted(
        p.relative_to(clone / path).as_posix() for p in files
    )
    assert all(file_md5(clone / path / e["relpath"]) == e["md5"] for e in entries), path


@pytest.mark.slow
def test_a_fresh_clone_pulls_every_output_and_has_nothing_to_run(
    pushed: tuple[Path, Path, str], tmp_path: Path
) -> None:
    project, _, _ = pushed
    clone = tmp_path / "clone"
    run_cli(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data/raw").exists()
    run_cli(["dvc", "pull"], clone)
    outputs = _outputs(clone)
    assert outputs == _outputs(project)
    for path, (md5, cached) in outputs.items():
        assert (clone / path).exists(), path
        if cached or not md5.endswith(".dir"):
            _assert_matches_the_lock(clone, path, md5)
    assert run_cli(["dvc", "status"], clone).stdout.strip() == "Data and pipelines are up to date."
    repro = run_cli(["dvc", "repro"], clone).stdout
    assert "Running stage" not in repro and "didn't change, skipping" in repro, repro


@pytest.mark.slow
@pytest.mark.parametrize("door", ["flows.retrain", "flows.repro"])
def test_a_run_with_nothing_to_do_pushes_too(pushed: tuple[Path, Path, str], door: str) -> None:
    """`make run` with nothing to do, and `make repro`: the remote gets what it lacks."""
    project, store, log = pushed
    shutil.rmtree(store)
    store.mkdir()
    result = run_cli(["python", "-m", door], project)
    assert "Running stage" not in result.stdout and "Flow run" not in result.stderr
    assert PUSHED.findall(result.stderr) == PUSHED.findall(log), result.stderr[-3000:]


def _dead_http(project: Path) -> str:
    url = f"http://127.0.0.1:{free_port()}/dvc-store"  # nothing listens there
    run_cli(["dvc", "remote", "add", "dead", url], project)
    update_params(project, {"dvc": {"remote": "dead"}})
    return f"error: the DVC remote 'dead' ({url}) does not answer at 127.0.0.1:"


def _missing_folder(project: Path) -> str:
    folder = project.parent / "unmounted" / "store"
    run_cli(["dvc", "remote", "add", "gone", str(folder)], project)
    update_params(project, {"dvc": {"remote": "gone"}})
    return f"error: the DVC remote 'gone' ({folder}) does not exist: mount or create it"


def _unknown_name(project: Path) -> str:
    update_params(project, {"dvc": {"remote": "nowhere"}})
    return "error: dvc.remote 'nowhere' is not a DVC remote of this project (configured: local)"


CASES = [  # the flow (a Prefect server and TensorFlow start first), and `make repro`
    pytest.param("flows.retrain", _dead_http, id="flow-dead-http"),
    pytest.param("flows.repro", _missing_folder, id="repro-missing-folder"),
    pytest.param("flows.repro", _unknown_name, id="repro-unknown-name"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("door", "case"), CASES)
def test_a_remote_that_cannot_take_the_push_stops_the_run_before_anything_changes(
    pushed: tuple[Path, Path, str], door: str, case: Callable[[Path], str]
) -> None:
    project, _, _ = pushed
    good = (project / "params.yaml").read_text()
    lock = (project / "dvc.lock").read_text()
    try:
        expected = case(project)
        update_params(project, {"train": {"epochs": 2}})  # train would run again
        started = time.monotonic()
        result = run_cli(["python", "-m", door], project, check=False)
        seconds = time.monotonic() - started
        status = run_cli(["dvc", "status"], project).stdout
    finally:
        (project / "params.yaml").write_text(good)
        run_cli(["git", "checkout", "-q", ".dvc/config"], project)
    assert result.returncode == 1 and seconds < 30, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(expected), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert (project / "dvc.lock").read_text() == lock and "train" in status, "nothing ran"
