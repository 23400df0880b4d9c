"""The DVC remote a successful run pushes to (`dvc.remote`): checked before a run changes
anything, pushed to after it succeeds.

A remote is named in params.yaml and configured where DVC keeps it (`dvc remote add -d NAME
URL`, `.dvc/config`), so a clone that pulls from it finds it. The check is cheap and answers
within `SERVICE_TIMEOUT_S`: the name is configured, DVC has the plugin for its URL, a local
remote's folder exists (a missing mount must not quietly fill the local disk), and a network
remote's host accepts connections.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tasks.config import Params
from tasks.runtime import UserError, reachable

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443, "webdav": 80, "webdavs": 443, "ssh": 22}
# object stores reached at a fixed host unless the remote names an endpoint of its own
DEFAULT_ENDPOINTS = {"s3": ("s3.amazonaws.com", 443), "gs": ("storage.googleapis.com", 443)}


def _open_repo() -> Any:
    from dvc.repo import Repo

    logging.getLogger("dvc").setLevel(logging.WARNING)  # importing dvc resets it to INFO
    return Repo()


def _remote_config(repo: Any, name: str) -> dict[str, Any]:
    remotes: dict[str, dict[str, Any]] = dict(repo.config["remote"])
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise UserError(
            f"dvc.remote {name!r} is not a DVC remote of this project (configured: {known}): "
            f"add it (dvc remote add -d {name} URL), or set dvc.remote: null"
        )
    try:
        repo.cloud.get_remote(name)  # DVC's plugin for the URL's scheme is installed
    except ImportError as error:
        raise UserError(
            f"the DVC remote {name!r} ({remotes[name]['url']}): {error} (S3's: uv sync --frozen "
            "--extra dask --extra s3)"
        ) from None
    return remotes[name]


def _endpoint(config: dict[str, Any]) -> tuple[str, int] | None:
    """The host and port a network remote is reached at (None: a local folder, or unknown)."""
    parts = urlsplit(config.get("endpointurl") or config["url"])
    if parts.scheme in DEFAULT_ENDPOINTS and not config.get("endpointurl"):
        return DEFAULT_ENDPOINTS[parts.scheme]
    if not parts.hostname:
        return None
    port = parts.port or config.get("port") or DEFAULT_PORTS.get(parts.scheme)
    return (parts.hostname, int(port)) if port else None


def _check_reachable(name: str, config: dict[str, Any]) -> None:
    url = config["url"]
    if "://" not in url:  # a local folder
        if not Path(url).is_dir():
            raise UserError(
                f"the DVC remote {name!r} ({url}) does not exist: mount or create it "
                f"(mkdir -p {url}), or point it elsewhere (dvc remote modify {name} url URL)"
            )
        return
    endpoint = _endpoint(config)
    if endpoint is not None and not reachable(*endpoint):
        raise UserError(
            f"the DVC remote {name!r} ({url}) does not answer at {endpoint[0]}:{endpoint[1]}: "
            f"start or reach it, or set dvc.remote: null"
        )


def check_remote(params: Params) -> None:
    """`dvc.remote`, when set, is configured and reachable: one line naming it if not."""
    name = params.dvc.remote
    if name is None:
        return
    with _open_repo() as repo:
        config = _remote_config(repo, name)
    _check_reachable(name, config)


def push_outputs(params: Params) -> int | None:
    """Push every DVC-tracked output to `dvc.remote` (None when unset); return the files sent."""
    from dvc.exceptions import DvcException

    name = params.dvc.remote
    if name is None:
        return None
    check_remote(params)
    with _open_repo() as repo:
        try:
            pushed = int(repo.push(remote=name))
        except DvcException as error:
            raise UserError(f"dvc push to {name!r} failed: {error}".replace("\n", " ")) from None
    log.info("pushed %d files to %s", pushed, name)
    return pushed
