"""Empty Prefect and MLflow databases at the tools' newest schema, made once per environment.

    python -c "from tasks.databases import build_all; build_all()"   # in `make install`

A checkout's first run creates `.prefect/prefect.db` (the Prefect server's) and
`mlruns/mlflow.db` (the tracking store). On a new file each tool runs every one of its schema
migrations: about 7 s for Prefect and 1 s for MLflow on 2 cores, paid by the first run of every
new checkout, project copy or CI clone. `make install` has the tools themselves build both
empty databases once, into the environment (`.venv/share/retrain/`, named by the tool's
version), and `seed` copies one where a database is missing. The tools then find their
schema current and migrate nothing. Without the templates (an environment not installed by
`make install`, another tool version) nothing is copied and the tools migrate as before.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

log = logging.getLogger(__name__)

TEMPLATES = Path(sys.prefix) / "share" / "retrain"
PREFECT_DATABASE_URLS = (
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
)


def template(tool: str) -> Path:
    return TEMPLATES / f"{tool}-{version(tool)}.db"


def seed(tool: str, target: Path) -> bool:
    """Copy the environment's empty database of tool (prefect, mlflow) to target when target
    does not exist and the template does; return whether it did."""
    source = template(tool)
    if target.exists() or not source.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.seeding")
    shutil.copyfile(source, partial)
    os.replace(partial, target)  # a concurrent run sees no file or a whole one
    log.debug("%s: %s from %s", tool, target, source)
    return True


def prefect_database_path() -> Path | None:
    """Where the Prefect server keeps its SQLite database (as Prefect's own settings resolve
    it: environment, profile, PREFECT_HOME), or None when it is configured to use another."""
    from prefect.settings import Settings

    url = Settings().server.database.connection_url  # read now: the environment as it is
    text = url.get_secret_value() if url is not None else ""
    prefix = "sqlite+aiosqlite:///"
    return Path(text.removeprefix(prefix)) if text.startswith(prefix) else None


def _build_prefect(folder: Path) -> Path:
    environment = {**os.environ, "PREFECT_HOME": str(folder)}
    for name in PREFECT_DATABASE_URLS:
        environment.pop(name, None)
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=environment,
        check=True,
        capture_output=True,
    )
    return folder / "prefect.db"


def _build_mlflow(folder: Path) -> Path:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    database = folder / "mlflow.db"
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Creating initial tables..."
    SqlAlchemyStore(f"sqlite:///{database}", (folder / "artifacts").as_uri())
    return database


BUILDERS = {"prefect": _build_prefect, "mlflow": _build_mlflow}


def build(tool: str) -> Path:
    """The template of tool, built by the tool itself when the environment lacks it."""
    target = template(tool)
    if target.exists():
        return target
    TEMPLATES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TEMPLATES) as folder:
        built = BUILDERS[tool](Path(folder))
        if any(Path(folder).glob("*.db-*")):  # a write-ahead log left behind: not a whole copy
            raise RuntimeError(f"{tool}: {built} was left with a write-ahead log")
        os.replace(built, target)
    return target


def build_all() -> None:
    for tool in BUILDERS:
        build(tool)
