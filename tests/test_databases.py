"""The empty databases `make install` builds once and a new checkout starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import databases


def test_a_missing_store_starts_from_the_template_and_an_existing_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy

    monkeypatch.setattr(databases, "TEMPLATES", tmp_path / "templates")
    target = tmp_path / "project" / "mlruns" / "mlflow.db"
    assert not databases.seed("mlflow", target), "no template yet: nothing copied"
    built = databases.build("mlflow")  # by MLflow itself
    assert built.name.startswith("mlflow-") and databases.build("mlflow") == built

    assert databases.seed("mlflow", target) and target.read_bytes() == built.read_bytes()
    engine = sqlalchemy.create_engine(f"sqlite:///{target}")
    with engine.connect() as connection:
        revision = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))
        assert revision.scalar(), "the copy is at MLflow's schema: nothing to migrate"
    engine.dispose()

    target.write_bytes(b"a store with runs")
    assert not databases.seed("mlflow", target) and target.read_bytes() == b"a store with runs"


def test_a_prefect_server_on_another_database_gets_no_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert databases.prefect_database_path() == tmp_path / "prefect.db"
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://db/prefect")
    assert databases.prefect_database_path() is None


def _served_block_types(api: str) -> set[str]:
    import json
    import urllib.request

    request = urllib.request.Request(f"{api}/block_types/filter", data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return {block["slug"] for block in json.load(response)}


@pytest.mark.slow
def test_a_prefect_server_on_a_seeded_database_does_not_register_block_types_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3
    from contextlib import closing

    from flows.server import prefect_server
    from tasks.runtime import free_port

    monkeypatch.setattr(databases, "TEMPLATES", tmp_path / "templates")
    built = databases.build("prefect")  # by starting Prefect's server once
    assert databases.blocks_registered(built) and not list(built.parent.glob("*.db-*"))
    with closing(sqlite3.connect(built)) as connection, connection:
        connection.execute("DELETE FROM block_type WHERE slug = 'secret'")  # a registration
        # would put it back

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    for start in ("seeded", "again"):  # the second start finds Prefect's memo of the first
        with prefect_server("127.0.0.1", free_port()) as api:
            served = _served_block_types(api)
        assert "local-file-system" in served and "secret" not in served, (start, served)
