"""train's resumable backup: where a Keras training backs up its epochs, the epoch log across
restarts, and the MLflow run a killed attempt left behind.

While a Keras model trains, `paths.checkpoints/train-<key>/` holds a backup of the last finished
epoch (and `train-<key>.csv` the epochs so far): a training that is killed and started again
with the same params and data resumes there. Both are removed when the training succeeds.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.config import Params
from tasks.datafiles import Split


def backup_dir_for(params: Params, train_split: Split) -> Path:
    """Where this training backs up its epochs: keyed by its params and a sample of its data,
    so a restart with other params or data starts afresh instead of loading a stale state."""
    digest = hashlib.sha256()
    for section in (params.dataset, params.model, params.train):
        digest.update(section.model_dump_json().encode())
    step = max(1, len(train_split.y) // 1000)
    digest.update(str(train_split.x.shape).encode())
    digest.update(np.ascontiguousarray(train_split.x[::step]).tobytes())
    digest.update(np.ascontiguousarray(train_split.y).tobytes())
    return params.paths.checkpoints / f"train-{digest.hexdigest()[:16]}"


def read_epoch_log(path: Path) -> pd.DataFrame:
    """Per-epoch logs across restarts: an epoch logged twice (killed before its backup) keeps
    its last row; epochs are numbered from 1."""
    logged = pd.read_csv(path).drop_duplicates(subset="epoch", keep="last")
    return logged.assign(epoch=logged["epoch"] + 1).reset_index(drop=True)


def remove_backup(backup: Path, epoch_log: Path) -> None:
    """What a finished training leaves (train_model already removed `.state`)."""
    shutil.rmtree(backup, ignore_errors=True)
    epoch_log.unlink(missing_ok=True)
    backup.with_suffix(".run").unlink(missing_ok=True)
    if backup.parent.is_dir() and not any(backup.parent.iterdir()):
        backup.parent.rmdir()


def prepare_backup(params: Params, train_split: Split) -> tuple[Path, str | None]:
    """The Keras training's backup folder, and the MLflow run a killed attempt left behind."""
    backup = backup_dir_for(params, train_split)
    epoch_log, run_file = backup.with_suffix(".csv"), backup.with_suffix(".run")
    if not backup.exists():  # a fresh start: epochs from an earlier attempt would mislead
        epoch_log.unlink(missing_ok=True)
        shutil.rmtree(backup.with_suffix(".state"), ignore_errors=True)
    backup.parent.mkdir(parents=True, exist_ok=True)
    return backup, run_file.read_text().strip() if run_file.exists() else None
