"""The environment variables `Settings` reads, for the tests that check deployment files
(docker-compose.yml, deploy/kubernetes) against the code."""

from __future__ import annotations

from pydantic import AliasChoices

from panoptic.core.settings import Settings


def settings_variables() -> set[str]:
    """Every environment variable `Settings` reads, upper-cased."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names
