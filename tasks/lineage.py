"""Lineage: what made a run or a registered version, so one command can rebuild it: the git
commit (and whether the tree differed from it), the md5s DVC records for the data, a hash of
the params each stage reads, uv.lock and the Python version.

A file's md5 comes from DVC's own hashing (`dvc_data`), so it is the value `dvc.lock` and the
DVC cache use. `dvc.lock` is read as YAML rather than through `dvc.repo.Repo`: a stage runs
while `dvc repro` holds the repository's lock, so a stage cannot open the repository itself.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
from functools import partial, reduce
from pathlib import Path

import yaml

from tasks.config import Params


def file_md5(path: Path) -> str:
    """The file's md5, as DVC records it for each file of a tracked folder."""
    from dvc_data.hashfile.hash import file_md5 as dvc_file_md5

    return str(dvc_file_md5(str(path)))


def locked_md5(lock: Path, out: Path) -> str | None:
    """The md5 that dvc.lock records for a path, if any."""
    return locked_md5s(lock).get(out.as_posix())


def locked_md5s(lock: Path) -> dict[str, str]:
    """Every path dvc.lock records (each stage's deps and outs) with its md5; a stage's own
    entry is its last run's, so read it after the stages it depends on have been recorded."""
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    return {
        entry["path"]: str(entry["md5"])
        for stage in stages.values()
        for kind in ("deps", "outs")
        for entry in stage.get(kind, [])
        if "md5" in entry
    }


def stage_inputs(params: Params, stage: str) -> tuple[list[str], list[str]]:
    """The data paths (not code) a dvc.yaml stage depends on, and the params keys it reads."""
    spec = yaml.safe_load(Path("dvc.yaml").read_text())["stages"][stage]
    paths = params.paths.model_dump(mode="json")
    resolve = partial(re.sub, r"\$\{paths\.(\w+)\}", lambda m: str(paths[m.group(1)]))
    deps = [resolve(d) for d in spec.get("deps", []) if not d.startswith(("tasks/", "flows/"))]
    return deps, list(spec.get("params", []))


def params_digest(keys: list[str], source: Path = Path("params.yaml")) -> str:
    """A sha256 of the values of the given params.yaml keys (sections or dotted keys)."""
    document = yaml.safe_load(source.read_text()) if source.is_file() else {}
    values = {
        key: reduce(lambda node, part: (node or {}).get(part), key.split("."), document)
        for key in keys
    }
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def git_state(ignored: tuple[str, ...] = ("dvc.lock", "reports/")) -> tuple[str, bool]:
    """(HEAD's commit, whether tracked files differ from it), pipeline outputs aside."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD").strip() or "unknown"
    changed = [
        line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
    ]
    return commit, any(not path.startswith(ignored) for path in changed)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def lineage_tags(params: Params, stage: str) -> dict[str, str]:
    """What made a stage's MLflow record: the commit (and whether the tree was dirty), the
    DVC md5 of each data input, a hash of the params it reads, uv.lock and Python."""
    commit, dirty = git_state(("dvc.lock", f"{params.paths.reports.as_posix()}/"))
    deps, keys = stage_inputs(params, stage)
    md5s = locked_md5s(Path("dvc.lock"))
    tags = {
        "mlflow.source.git.commit": commit,
        "lineage.git_dirty": str(dirty).lower(),
        "lineage.uv_lock_sha256": file_sha256(Path("uv.lock")),
        "lineage.python": platform.python_version(),
        f"lineage.{stage}.params_sha256": params_digest(keys),
    }
    return tags | {f"dvc.md5.{path}": md5s[path] for path in deps if path in md5s}


def pipeline_md5s() -> dict[str, str]:
    """`dvc.md5.<path>` for every path in dvc.lock: the data a registered version came from."""
    return {
        f"dvc.md5.{path}": md5
        for path, md5 in locked_md5s(Path("dvc.lock")).items()
        if not path.startswith(("tasks/", "flows/"))
    }
