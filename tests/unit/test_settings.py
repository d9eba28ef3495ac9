"""Settings: read from the environment, safe defaults in development, strict in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from panoptic.core.settings import Environment, Settings, SettingsError


def test_development_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """With an empty environment the suite uses the contract's ports and an embedded database."""
    for key in ("DATABASE_URL", "PANOPTIC_ENV", "PANOPTIC_INDEXER_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.embedded_database
    assert (settings.indexer_port, settings.retriever_port, settings.gateway_port) == (
        50051,
        50052,
        8080,
    )
    assert (settings.indexer_metrics_port, settings.retriever_metrics_port) == (9101, 9102)


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """PANOPTIC_* variables and DATABASE_URL are read, case-insensitively, with types."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/panoptic")
    monkeypatch.setenv("panoptic_retriever_port", "6000")
    settings = Settings()
    assert settings.retriever_port == 6000
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://u:p@db:5432/panoptic"
    assert not settings.embedded_database


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token or password never appears when settings are printed or logged."""
    monkeypatch.setenv("PANOPTIC_INDEXER_TOKEN", "s3cret-token-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db/panoptic")
    text = repr(Settings())
    assert "s3cret-token-value" not in text
    assert "hunter2" not in text


def test_a_port_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port above 65535 fails validation, naming the field."""
    monkeypatch.setenv("PANOPTIC_INDEXER_PORT", "70000")
    with pytest.raises(ValidationError, match="indexer_port"):
        Settings()


@pytest.mark.parametrize("token", [None, "", "changeme", "short-token"])
def test_production_refuses_a_missing_or_default_token(
    monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    """Production mode will not run the indexer with no, a well-known or a short token."""
    monkeypatch.setenv("PANOPTIC_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/panoptic")
    if token is None:
        monkeypatch.delenv("PANOPTIC_INDEXER_TOKEN", raising=False)
    else:
        monkeypatch.setenv("PANOPTIC_INDEXER_TOKEN", token)
    with pytest.raises(SettingsError, match="PANOPTIC_INDEXER_TOKEN"):
        Settings().require_production_ready(database="indexer", token=True)


@pytest.mark.parametrize(
    ("database", "variable"),
    [("owner", "DATABASE_URL"), ("retriever", "PANOPTIC_RETRIEVER_DATABASE_URL")],
)
def test_production_refuses_the_embedded_database(
    monkeypatch: pytest.MonkeyPatch, database: str, variable: str
) -> None:
    """Production mode needs a real database URL: it never keeps data on an embedded server."""
    monkeypatch.setenv("PANOPTIC_ENV", "production")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SettingsError, match=variable):
        Settings().require_production_ready(database=database)


def test_production_refuses_a_default_role_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """A well-known database role password is refused in production."""
    monkeypatch.setenv("PANOPTIC_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/panoptic")
    monkeypatch.setenv("PANOPTIC_RETRIEVER_DB_PASSWORD", "changeme")
    with pytest.raises(SettingsError, match="PANOPTIC_RETRIEVER_DB_PASSWORD"):
        Settings().require_production_ready(database="owner")


def test_production_checks_only_what_the_process_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retriever runs with its own URL alone: it is never handed the owner's or the token."""
    monkeypatch.setenv("PANOPTIC_ENV", "production")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("PANOPTIC_INDEXER_TOKEN", raising=False)
    monkeypatch.setenv("PANOPTIC_RETRIEVER_DATABASE_URL", "postgresql://r:p@db/panoptic")
    Settings().require_production_ready(database="retriever")


def test_development_checks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside production, missing secrets are fine: `make run` makes its own."""
    monkeypatch.delenv("PANOPTIC_ENV", raising=False)
    monkeypatch.delenv("PANOPTIC_INDEXER_TOKEN", raising=False)
    Settings().require_production_ready(database="owner", token=True)
