"""Lineage: the md5s DVC records for the data, so a run names the exact files it used.

A file's md5 comes from DVC's own hashing (`dvc_data`), so it is the value `dvc.lock` and the
DVC cache use. `dvc.lock` is read as YAML rather than through `dvc.repo.Repo`: a stage runs
while `dvc repro` holds the repository's lock, so a stage cannot open the repository itself.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def file_md5(path: Path) -> str:
    """The file's md5, as DVC records it for each file of a tracked folder."""
    from dvc_data.hashfile.hash import file_md5 as dvc_file_md5

    return str(dvc_file_md5(str(path)))


def locked_md5(lock: Path, out: Path) -> str | None:
    """The md5 that dvc.lock records for an output path, if any."""
    if not lock.is_file():
        return None
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    for stage in stages.values():
        for entry in stage.get("outs", []):
            if Path(entry["path"]) == out:
                return str(entry.get("md5"))
    return None
