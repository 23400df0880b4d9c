"""Empty Prefect and MLflow databases at the tools' newest schema, made once per environment.

    python -c "from tasks.databases import build_all; build_all()"   # in `make install`

A checkout's first run creates `.prefect/prefect.db` (the Prefect server's) and
`mlruns/mlflow.db` (the tracking store). On a new file each tool runs every one of its schema
migrations: about 7 s for Prefect and 1 s for MLflow on 2 cores, paid by the first run of every
new checkout, project copy or CI clone; Prefect's server then also registers its block types
(about 2 s more). `make install` has the tools themselves build both empty databases once,
into the environment (`.venv/share/retrain/`, named by the tool's version): Prefect's by
starting its server once, which migrates and registers. `seed` copies one where a database is
missing; the tools then find their schema current and migrate nothing, and a server started
on a seeded copy is told its block types are there (`blocks_registered`). Without the
templates (an environment not installed by `make install`, another tool version) nothing is
copied and the tools migrate and register as before.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import sys
import tempfile
from contextlib import closing
from importlib.metadata import version
from pathlib import Path

from tasks.runtime import free_port, server_process

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


def _build_prefect(folder: Path, timeout_s: float = 300) -> Path:
    """Prefect's server started once on a new database, and stopped once it answers: its
    start-up migrates the schema and registers Prefect's block types, both kept in the file."""
    environment = {**os.environ, "PREFECT_HOME": str(folder)}
    for name in PREFECT_DATABASE_URLS:
        environment.pop(name, None)
    port = free_port()
    with server_process(
        [sys.executable, "-m", "prefect", "server", "start", "--port", str(port), "--no-ui"],
        f"http://127.0.0.1:{port}/api/health",
        f"prefect: the server building {folder} did not start",
        env={**environment, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
        timeout_s=timeout_s,
    ):
        pass  # it answers: migrated and registered
    database = folder / "prefect.db"
    with closing(sqlite3.connect(database)) as connection:  # the server's write-ahead log
        connection.execute("PRAGMA journal_mode=DELETE")  # merged in: one whole file
    return database


def blocks_registered(database: Path) -> bool:
    """Whether a Prefect database holds Prefect's block types (a template built by starting
    the server does; one built before by migrations alone does not)."""
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        try:
            (count,) = connection.execute("SELECT count(*) FROM block_type").fetchone()
        except sqlite3.Error:
            return False
    return bool(count)


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
