"""DatabaseUrl: parsing, role and database substitution, and redaction."""

from __future__ import annotations

import pytest

from panoptic.core.db import DatabaseUrl, DatabaseUrlError, role_url


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("mysql://u@h/db", "must start with postgresql://"),
        ("postgresql://u@h", "names no database"),
        ("postgresql://u@h:notaport/db", "port that is not a number"),
        ("not a url", "must start with postgresql://"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(value: str, complaint: str) -> None:
    """A malformed URL fails at once, saying which part is wrong."""
    with pytest.raises(DatabaseUrlError, match=complaint):
        DatabaseUrl(value)


def test_role_url_swaps_the_user_and_keeps_the_server() -> None:
    """A service's URL is the owner's with its own role and password."""
    owner = DatabaseUrl("postgresql://owner:pw@db.internal:6543/panoptic?sslmode=require")
    url = role_url(owner, "panoptic_retriever", "p@ss/word")
    assert url.user == "panoptic_retriever"
    assert url.database == "panoptic"
    assert url.value == (
        "postgresql://panoptic_retriever:p%40ss%2Fword@db.internal:6543/panoptic?sslmode=require"
    )


def test_socket_urls_survive_substitution() -> None:
    """Unix-socket URLs (host in the query) keep their socket when the database changes."""
    url = DatabaseUrl("postgresql://postgres@/postgres?host=%2Ftmp%2Fpg&port=5432")
    other = url.with_database("panoptic_test").with_user("panoptic_owner")
    assert other.value == "postgresql://panoptic_owner@/panoptic_test?host=%2Ftmp%2Fpg&port=5432"


def test_redacted_hides_the_password() -> None:
    """The password never reaches logs or error messages."""
    url = DatabaseUrl("postgresql://owner:hunter2@db:5432/panoptic")
    assert url.redacted() == "postgresql://owner:***@db:5432/panoptic"
    assert "hunter2" not in url.redacted()
