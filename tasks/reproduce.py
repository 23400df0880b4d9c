"""reproduce: rebuild a registered version from its tags alone, and compare.

    python -m tasks.reproduce models:/digits-cnn/3 [--allow-dirty] [--workdir DIR]

Reads the version's lineage tags (`mlflow.source.git.commit`, `lineage.git_dirty`, the
`dvc.md5.<path>` of its data), checks that commit out into a temporary git worktree, points
it at this repository's DVC cache and restores the data there (`dvc checkout`, or
`dvc pull` from the configured remote), runs `dvc repro --force` against a throw-away MLflow
store (the registry you read from is not touched), and prints the registered and rebuilt test
metrics side by side. Exits 0 only when they agree: exactly when the version trained with
`train.deterministic`, else within `--tolerance` (stated in the output).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tasks.config import load_params
from tasks.runtime import UserError, run_entry

log = logging.getLogger(__name__)

EMPTY_FOLDER_MD5 = "d751713988987e9331980363e24189ce.dir"  # DVC's md5 of a folder with no files


def resolve_version(client: Any, uri: str) -> Any:
    """The model version a `models:/<name>/<version>` or `models:/<name>@<alias>` URI names."""
    from mlflow.exceptions import MlflowException

    name, _, ref = uri.removeprefix("models:/").partition("/")
    name, _, alias = name.partition("@")
    if not uri.startswith("models:/") or not (ref or alias):
        raise UserError(f"{uri!r}: expected models:/<name>/<version> or models:/<name>@<alias>")
    try:
        return (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, ref)
        )
    except MlflowException:
        raise UserError(f"{uri}: no such registered model version in the registry") from None


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def check_lineage(tags: dict[str, str], uri: str, allow_dirty: bool) -> str:
    """The version's commit, refused when unknown here or made from a dirty tree."""
    commit = tags.get("mlflow.source.git.commit", "unknown")
    if commit == "unknown" or _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise UserError(f"{uri}: its commit {commit[:12]} is not in this repository (git fetch?)")
    if tags.get("lineage.git_dirty") == "true" and not allow_dirty:
        raise UserError(
            f"{uri}: made from a dirty tree at {commit[:12]} (uncommitted changes cannot be "
            "checked out); --allow-dirty rebuilds from the commit anyway"
        )
    return commit


@contextmanager
def worktree(commit: str, keep: Path | None) -> Iterator[Path]:
    """A detached git worktree of commit, removed afterwards unless kept."""
    folder = keep or Path(tempfile.mkdtemp(prefix="reproduce-")) / "tree"
    added = _git("worktree", "add", "--detach", str(folder), commit)
    if added.returncode != 0:
        raise UserError(
            f"git worktree add {folder} failed: {added.stderr.strip().splitlines()[-1]}"
        )
    try:
        yield folder
    finally:
        if keep is None:
            _git("worktree", "remove", "--force", str(folder))


def _dvc(folder: Path, *args: str, env: dict[str, str] | None = None) -> bool:
    done = subprocess.run(
        ["dvc", *args], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        log.debug("dvc %s: %s", " ".join(args), done.stderr)
    return done.returncode == 0


def restore_data(folder: Path, tags: dict[str, str]) -> None:
    """The version's data in the worktree: from this repository's cache, else the remote."""
    cache = (Path.cwd() / ".dvc" / "cache").resolve()
    _dvc(folder, "cache", "dir", "--local", str(cache))
    if not _dvc(folder, "checkout") and not _dvc(folder, "pull"):
        log.info("reproduce: some outputs were not restored; dvc repro rebuilds them")
    params = yaml.safe_load((folder / "params.yaml").read_text())
    source = Path(params.get("paths", {}).get("source", "data/source"))
    wanted = tags.get(f"dvc.md5.{source.as_posix()}")
    if wanted == EMPTY_FOLDER_MD5:  # git keeps no empty folder: nothing to restore
        (folder / source).mkdir(parents=True, exist_ok=True)
    elif wanted and not (folder / source).exists():
        raise UserError(
            f"the data {source} (md5 {wanted}) is in neither the DVC cache nor a remote"
        )


def rebuild(folder: Path) -> dict[str, float]:
    """`dvc repro --force` in the worktree, recorded in a throw-away MLflow store."""
    store = f"sqlite:///{folder.resolve()}/mlruns-reproduce.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}
    done = subprocess.run(
        ["dvc", "repro", "--force"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        raise UserError(f"dvc repro in {folder} failed: {' '.join(last)}")
    scores: dict[str, float] = json.loads((folder / "reports" / "metrics.json").read_text())
    return scores


def check_data(folder: Path, tags: dict[str, str]) -> None:
    """The rebuilt data must be the version's: the md5 of each source it recorded."""
    lock = yaml.safe_load((folder / "dvc.lock").read_text())["stages"]
    for entry in lock.get("ingest", {}).get("deps", []):
        wanted = tags.get(f"dvc.md5.{entry['path']}")
        if wanted and wanted != entry.get("md5"):
            raise UserError(
                f"{entry['path']}: md5 {entry.get('md5')} is not the version's {wanted}"
            )


def compare(
    registered: dict[str, float], rebuilt: dict[str, float], exact: bool, tolerance: float
) -> bool:
    """Print both side by side; whether every registered metric was rebuilt (within tolerance)."""
    limit = 0.0 if exact else tolerance
    rule = "exactly (train.deterministic)" if exact else f"within {tolerance}"
    print(f"{'metric':<16}{'registered':>12}{'rebuilt':>12}  (must agree {rule})")
    agree = True
    for name, value in sorted(registered.items()):
        again = rebuilt.get(name, float("nan"))
        same = abs(again - value) <= limit
        agree &= same
        print(f"{name:<16}{value:>12.6f}{again:>12.6f}  {'' if same else 'DIFFERS'}")
    return agree


def run(
    uri: str, allow_dirty: bool = False, workdir: Path | None = None, tolerance: float = 0.02
) -> bool:
    """Rebuild the version; whether its metrics came out the same."""
    from mlflow import MlflowClient

    from tasks.tracking import start_tracking

    start_tracking(load_params())
    client = MlflowClient()
    version = resolve_version(client, uri)
    tags = dict(version.tags)
    commit = check_lineage(tags, uri, allow_dirty)
    run_data = client.get_run(version.run_id).data
    registered = {
        k.removeprefix("test_"): v for k, v in run_data.metrics.items() if k.startswith("test_")
    }
    exact = run_data.params.get("train.deterministic", "False") == "True"
    log.info("reproduce: %s v%s from commit %s", version.name, version.version, commit[:12])
    with worktree(commit, workdir) as folder:
        restore_data(folder, tags)
        rebuilt = rebuild(folder)
        check_data(folder, tags)
        return compare(registered, rebuilt, exact, tolerance)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tasks.reproduce", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="models:/<name>/<version> or models:/<name>@<alias>")
    parser.add_argument(
        "--allow-dirty", action="store_true", help="rebuild a version made from a dirty tree"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the rebuild in this folder (a git worktree)"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.02, help="allowed difference when not deterministic"
    )
    args = parser.parse_args(argv)
    if not run(args.model, args.allow_dirty, args.workdir, args.tolerance):
        raise UserError(f"{args.model}: the rebuilt metrics differ from the registered ones")


if __name__ == "__main__":
    run_entry("tasks.reproduce")
