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


@pytest.mark.slow
def test_a_prefect_server_on_a_seeded_database_serves_the_templates_block_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import urllib.request

    from flows.server import free_port, prefect_server

    monkeypatch.setattr(databases, "TEMPLATES", tmp_path / "templates")
    built = databases.build("prefect")  # by starting Prefect's server once
    assert databases.blocks_registered(built) and not list(built.parent.glob("*.db-*"))

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    with prefect_server("127.0.0.1", free_port()) as api:
        request = urllib.request.Request(f"{api}/block_types/filter", data=b"{}", method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            served = {block["slug"] for block in json.load(response)}
    database = tmp_path / "home" / "prefect.db"
    assert databases.blocks_registered(database), database
    assert {"secret", "local-file-system"} <= served, served
    assert (tmp_path / "home" / "memo_store.toml").exists(), "later starts skip registering too"
