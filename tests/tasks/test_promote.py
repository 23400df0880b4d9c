"""Promotion and rollback by hand, against a real MLflow registry in a temporary store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.promote import main
from tasks.registry import HISTORY_TAG, champion_history, crown
from tasks.runtime import UserError

NAME = "promote-test"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Three registered versions of a model; v2 is @champion after v1, as register leaves it."""
    from mlflow import MlflowClient

    from tasks.config import load_params
    from tasks.tracking import start_tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    Path("params.yaml").write_text(f"register:\n  model_name: {NAME}\n")
    start_tracking(load_params())
    client = MlflowClient()
    client.create_registered_model(NAME)
    for _ in range(3):
        client.create_model_version(NAME, source=(tmp_path / "model").as_uri())
    crown(client, NAME, "1", ["1"])
    crown(client, NAME, "2", ["1", "2"])
    yield client


def _champion(client: Any) -> str:
    return str(client.get_model_version_by_alias(NAME, "champion").version)


def test_promote_by_hand_records_who_and_why(registry: Any) -> None:
    main(["--version", "3", "--reason", "checked on the holdout", "--by", "ana"])
    assert _champion(registry) == "3"
    tags = registry.get_model_version(NAME, "3").tags
    assert tags["manual.action"] == "promote" and tags["manual.by"] == "ana"
    assert tags["manual.reason"] == "checked on the holdout"
    assert tags["manual.previous_champion"] == "2"
    assert champion_history(registry, NAME) == ["1", "2", "3"]


def test_rollback_walks_back_through_the_champions(registry: Any) -> None:
    main(["--rollback", "--reason", "v2 misbehaves"])
    assert _champion(registry) == "1"
    tags = registry.get_model_version(NAME, "1").tags
    assert tags["manual.action"] == "rollback" and tags["manual.previous_champion"] == "2"
    assert tags["manual.by"]  # the login name by default
    assert registry.get_registered_model(NAME).tags[HISTORY_TAG] == "1"
    with pytest.raises(UserError, match="no previous champion"):
        main(["--rollback", "--reason", "again"])
    assert _champion(registry) == "1"


def test_rollback_after_a_manual_promotion_returns_to_the_one_before(registry: Any) -> None:
    main(["--version", "3", "--reason", "try v3"])
    main(["--rollback", "--reason", "v3 was worse"])
    assert _champion(registry) == "2"


def test_history_follows_an_alias_moved_elsewhere(registry: Any) -> None:
    registry.set_registered_model_alias(NAME, "champion", "3")  # e.g. in the MLflow UI
    assert champion_history(registry, NAME) == ["1", "2", "3"]
    main(["--rollback", "--reason", "undo the UI change"])
    assert _champion(registry) == "2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--version", "9", "--reason", "x"], "has no version 9"),
        (["--version", "2", "--reason", "x"], "already @champion"),
        (["--version", "3", "--reason", " "], "--reason must say why"),
        (["--version", "3", "--reason", "x", "--model", "nope"], "no registered model 'nope'"),
    ],
)
def test_bad_requests_change_nothing(registry: Any, argv: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        main(argv)
    assert _champion(registry) == "2"
    assert champion_history(registry, NAME) == ["1", "2"]
