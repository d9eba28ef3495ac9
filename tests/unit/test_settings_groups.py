"""Settings grouped per concern: every variable keeps its flat name and lands in one group, each
group states its own production rule, and no service is handed the whole settings object."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest
from pydantic.fields import FieldInfo

from panoptic.core.settings import (
    DEVELOPMENT_CONSISTENCY_TOKEN_KEY,
    DEVELOPMENT_PAGE_TOKEN_KEY,
    DashboardSettings,
    DatabaseSettings,
    Environment,
    GatewaySettings,
    IndexerSettings,
    MonitoringSettings,
    RetrieverSettings,
    ServerSettings,
    Settings,
    SettingsError,
    SettingsGroup,
)

ROOT = Path(__file__).resolve().parents[2]

# The grouping these tests hold the code to: each field of `Settings` in one group (`env` is
# in all of them, as every group's production rule depends on it).
GROUPS: dict[str, tuple[type[SettingsGroup], str]] = {
    "server": (ServerSettings, "bind_host log_level log_format shutdown_grace_seconds "
               "max_message_bytes"),
    "database": (DatabaseSettings, "data_dir database_url indexer_database_url "
                 "retriever_database_url dashboard_database_url indexer_db_password "
                 "retriever_db_password dashboard_db_password db_pool_min_size db_pool_max_size "
                 "db_connect_timeout_seconds db_stats_interval_seconds replica_urls "
                 "replica_max_lag_seconds replica_check_interval_seconds "
                 "consistency_wait_seconds consistency_token_key"),
    "indexer": (IndexerSettings, "indexer_port indexer_metrics_port indexer_address "
                "indexer_token indexer_tls_cert indexer_tls_key indexer_tls_client_ca "
                "indexer_max_batch_claims indexer_max_text_chars idempotency_retention_hours "
                "pipelines_expected"),
    "retriever": (RetrieverSettings, "retriever_port retriever_metrics_port page_token_key "
                  "retriever_statement_timeout_seconds retriever_workers "
                  "retriever_max_connection_age_seconds"),
    "gateway": (GatewaySettings, "gateway_port gateway_metrics_port retriever_address "
                "gateway_services gateway_descriptor_source gateway_reflection_refresh_seconds "
                "gateway_startup_timeout_seconds gateway_deadline_seconds "
                "gateway_retriever_connections gateway_call_stream gateway_method_deadlines "
                "gateway_cache_control "
                "gateway_response_cache_mib gateway_cors_origins gateway_rate_limit_per_second "
                "gateway_rate_limit_burst gateway_trusted_proxies gateway_max_url_bytes "
                "gateway_max_header_bytes gateway_compress_min_bytes"),
    "dashboard": (DashboardSettings, "dashboard_port dashboard_metrics_port dashboard_user "
                  "dashboard_password dashboard_session_secret dashboard_session_minutes "
                  "dashboard_login_failures_per_minute dashboard_secure_cookie "
                  "dashboard_statement_timeout_seconds"),
    "monitoring": (MonitoringSettings, "alert_not_indexed_minutes prometheus_port"),
}  # fmt: skip

# Every environment variable, with the group and field it sets.
VARIABLES: list[tuple[str, str, str]] = [
    *(
        (f"PANOPTIC_{field}".upper(), group, field)
        for group, (_, fields) in GROUPS.items()
        for field in fields.split()
    ),
    ("DATABASE_URL", "database", "database_url"),
    *(("PANOPTIC_ENV", group, "env") for group in GROUPS),
]


def _clear_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the surrounding environment reaches the settings under test."""
    for variable, _, _ in VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def _changed_value(field: FieldInfo) -> str:
    """A valid value for `field`, as an environment variable, that is not its default."""
    default, annotation = field.default, field.annotation
    if get_origin(annotation) is Literal:
        return str(next(choice for choice in get_args(annotation) if choice != default))
    if field.annotation is bool or bool in get_args(annotation):
        return "false" if default is True else "true"
    if default is None or isinstance(default, Path):
        return "/tmp/a-secret-or-path-for-the-settings-test-0123456789"  # noqa: S108 - never opened
    if isinstance(default, bool | int | float) and not isinstance(default, str):
        return str(default + 1)
    if isinstance(default, list):
        return json.dumps(["panoptic.v1.OtherService"])
    if isinstance(default, dict):
        first = next(iter(default.values()))
        return json.dumps({"GetClaim": first + 1 if isinstance(first, float) else "no-cache"})
    if default == "development":
        return "production"
    return f"changed-{default}"


def _documented_variables(known: set[str]) -> set[str]:
    """The variable names in the README's Configuration table, brace lists expanded and a
    row's shorthands (`PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND` / `_BURST`) completed from the
    row's first name into a `known` variable."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in section.splitlines():
        tokens = re.findall(r"`((?:PANOPTIC_|DATABASE_URL|_)[A-Z_{},]*)`", row)
        for token in tokens:
            if match := re.fullmatch(r"(\w*)\{([\w,]+)\}(\w*)", token):
                names.update(f"{match[1]}{part}{match[3]}" for part in match[2].split(","))
            elif token.startswith("_"):
                first = tokens[0]
                stems = (first[:cut] for cut in range(len(first)) if first[cut] == "_")
                names.update({stem + token for stem in stems} & known or {token})
            else:
                names.add(token)
    return names


@pytest.mark.parametrize(("variable", "group", "field"), VARIABLES)
def test_every_variable_lands_in_its_group(
    monkeypatch: pytest.MonkeyPatch, variable: str, group: str, field: str
) -> None:
    """Each variable, under its unchanged flat name, sets its field in its group's view."""
    _clear_environment(monkeypatch)
    model = GROUPS[group][0]
    monkeypatch.setenv(variable, _changed_value(model.model_fields[field]))
    view = getattr(Settings(), group)
    assert type(view) is model
    assert getattr(view, field) != model.model_fields[field].default


def test_the_groups_hold_every_setting_once() -> None:
    """The groups together are exactly `Settings`, and no field but `env` is in two groups."""
    seen: dict[str, str] = {}
    for group, (model, fields) in GROUPS.items():
        assert set(model.model_fields) == {"env", *fields.split()}, group
        for field in fields.split():
            assert field not in seen, f"{field} is in {seen.get(field)} and {group}"
            seen[field] = group
    assert set(Settings.model_fields) == {"env", *seen}


def test_every_variable_is_documented_and_every_documented_one_read() -> None:
    """The README's Configuration table and the variables the groups read are the same set
    (`PANOPTIC_DATABASE_URL`, the long spelling of `DATABASE_URL`, aside)."""
    read = {variable for variable, _, _ in VARIABLES}
    documented = _documented_variables(read)
    assert documented <= read, f"documented but not read: {sorted(documented - read)}"
    missing = read - documented - {"PANOPTIC_DATABASE_URL"}
    assert not missing, f"read but not documented: {sorted(missing)}"


def test_production_refuses_the_sum_of_the_groups_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """In production, one refusal names what every group the process uses is missing, and
    each group asked alone states the same rule."""
    _clear_environment(monkeypatch)
    monkeypatch.setenv("PANOPTIC_ENV", "production")
    settings = Settings()
    with pytest.raises(SettingsError) as refusal:
        settings.require_production_ready(
            database="dashboard",
            token=True,
            dashboard=True,
            page_token=True,
            consistency_token=True,
        )
    for variable in (
        "PANOPTIC_DASHBOARD_DATABASE_URL",
        "PANOPTIC_INDEXER_TOKEN",
        "PANOPTIC_DASHBOARD_PASSWORD",
        "PANOPTIC_DASHBOARD_SESSION_SECRET",
        "PANOPTIC_PAGE_TOKEN_KEY",
        "PANOPTIC_CONSISTENCY_TOKEN_KEY",
    ):
        assert variable in str(refusal.value)
    assert settings.indexer.token_problems() == settings.token_problems() != []
    assert settings.dashboard.login_problems() == settings.login_problems() != []
    assert settings.retriever.page_token_problems() == settings.page_token_problems() != []
    assert settings.database.database_problems("owner") == settings.database_problems("owner")
    assert (
        settings.database.consistency_token_problems()
        == settings.consistency_token_problems()
        != []
    )


@pytest.mark.parametrize(
    ("variable", "rule", "development_key"),
    [
        ("PANOPTIC_PAGE_TOKEN_KEY", "page_token_problems", DEVELOPMENT_PAGE_TOKEN_KEY),
        (
            "PANOPTIC_CONSISTENCY_TOKEN_KEY",
            "consistency_token_problems",
            DEVELOPMENT_CONSISTENCY_TOKEN_KEY,
        ),
    ],
)
@pytest.mark.parametrize(
    ("value", "refused"),
    [("", True), ("changeme", True), ("k" * 31, True), (None, True), ("k" * 32, False)],
)
def test_a_signing_key_must_be_random_and_long(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    rule: str,
    development_key: str,
    value: str | None,
    refused: bool,
) -> None:
    """Page-token and consistency-token keys: unset, well known, the development key (None
    here) or shorter than 32 characters is refused by name; 32 characters of one's own are
    accepted."""
    _clear_environment(monkeypatch)
    monkeypatch.setenv(variable, development_key if value is None else value)
    problems = getattr(Settings(), rule)()
    assert bool(problems) == refused
    if refused:
        assert variable in problems[0]


def test_a_group_refuses_only_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside production a group's problems are not refused; in production they are."""
    _clear_environment(monkeypatch)
    development = Settings().indexer
    development.refuse(development.token_problems())
    production = development.model_copy(update={"env": Environment.PRODUCTION})
    with pytest.raises(SettingsError, match="refusing to start in production"):
        production.refuse(production.token_problems())


def _imported_names(path: Path) -> set[str]:
    """The names a module imports from `panoptic.core.settings`."""
    return {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "panoptic.core.settings"
        for alias in node.names
    }


@pytest.mark.parametrize("path", sorted((ROOT / "services").rglob("*.py")), ids=str)
def test_no_service_is_handed_the_whole_settings(path: Path) -> None:
    """A service imports the groups it uses, never `Settings` or `get_settings`."""
    assert not _imported_names(path) & {"Settings", "get_settings"}


def test_secrets_stay_hidden_in_a_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A group's repr hides its secrets as the whole settings' does."""
    _clear_environment(monkeypatch)
    monkeypatch.setenv("PANOPTIC_DASHBOARD_PASSWORD", "hunter2-hunter2")
    assert "hunter2" not in repr(Settings().dashboard)
