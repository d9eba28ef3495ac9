"""The dashboard's login pieces without a server: credentials, sessions, throttle, redirects."""

from __future__ import annotations

import time

import pytest

from panoptic.core.settings import Environment, Settings, SettingsError
from services.dashboard.auth import Credentials, LoginThrottle, SessionCodec, safe_next, same_token

SECRET = "unit-test-session-secret-0123456789"


class Clock:
    """A clock the test moves by hand, starting at the real time (cookies carry real stamps)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def codec(clock: Clock, phrase: str = "right", lifetime: float = 60) -> SessionCodec:
    """Sessions of one minute for user `admin` with the password `phrase`."""
    return SessionCodec(SECRET, Credentials("admin", phrase), lifetime, clock=clock)


def test_credentials_need_both_user_and_password() -> None:
    """Only the configured user with the configured password passes."""
    credentials = Credentials("admin", "s3cret-password")
    assert credentials.check("admin", "s3cret-password")
    assert not credentials.check("admin", "s3cret-passwor")
    assert not credentials.check("Admin", "s3cret-password")
    assert not credentials.check("", "")


def test_a_session_opens_until_it_expires() -> None:
    """A cookie opens to its session until its lifetime after login has passed."""
    clock = Clock()
    sessions = codec(clock)
    session, cookie = sessions.issue("admin")
    opened = sessions.open(cookie)
    assert opened is not None
    assert (opened.user, opened.csrf_token) == ("admin", session.csrf_token)
    clock.now += 59
    assert sessions.open(cookie) is not None
    clock.now += 2
    assert sessions.open(cookie) is None


@pytest.mark.parametrize("value", [None, "", "garbage", "a.b.c"])
def test_missing_or_garbled_cookies_open_to_nothing(value: str | None) -> None:
    """Anything but a cookie this codec signed is no session."""
    assert codec(Clock()).open(value) is None


def test_a_tampered_cookie_is_refused() -> None:
    """Changing one character of a signed cookie breaks it."""
    sessions = codec(Clock())
    _, cookie = sessions.issue("admin")
    # Not the last character: base64's last one may carry padding bits that decode the same.
    position = len(cookie) - 10
    replacement = "A" if cookie[position] != "A" else "B"
    tampered = cookie[:position] + replacement + cookie[position + 1 :]
    assert sessions.open(tampered) is None


def test_changing_the_password_ends_every_session() -> None:
    """Sessions are bound to the credentials they were opened with."""
    clock = Clock()
    _, cookie = codec(clock, phrase="old").issue("admin")
    assert codec(clock, phrase="old").open(cookie) is not None
    assert codec(clock, phrase="new").open(cookie) is None


def test_a_revoked_session_stays_closed() -> None:
    """After logout the same cookie is refused; other sessions go on."""
    sessions = codec(Clock())
    session, cookie = sessions.issue("admin")
    _, other = sessions.issue("admin")
    sessions.revoke(session)
    assert sessions.open(cookie) is None
    assert sessions.open(other) is not None


def test_the_login_form_token_is_vouched_for_by_its_cookie() -> None:
    """The login form's token matches only the cookie issued with it."""
    sessions = codec(Clock())
    token, cookie = sessions.login_token()
    other_token, _ = sessions.login_token()
    assert sessions.check_login_token(cookie, token)
    assert not sessions.check_login_token(cookie, other_token)
    assert not sessions.check_login_token(None, token)
    assert not sessions.check_login_token(cookie, "")


def test_csrf_tokens_compare_exactly() -> None:
    """An empty or different token never matches."""
    assert same_token("abc", "abc")
    assert not same_token("abc", "")
    assert not same_token("abc", "abd")


def test_the_throttle_refuses_a_client_at_the_limit_for_the_rest_of_the_minute() -> None:
    """Five failures in a minute block that client (and only it) until the first one is a
    minute old; a successful login forgets its failures."""
    clock = Clock()
    throttle = LoginThrottle(5, clock=clock)
    for _ in range(5):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        clock.now += 1
    assert 55 <= throttle.retry_after("10.0.0.1") <= 57
    assert throttle.retry_after("10.0.0.2") == 0
    clock.now += 56
    assert throttle.retry_after("10.0.0.1") == 0
    throttle.failed("10.0.0.3")
    throttle.succeeded("10.0.0.3")
    assert throttle.retry_after("10.0.0.3") == 0


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/claims?q=x", "/claims?q=x"),
        (None, "/"),
        ("", "/"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("claims", "/"),
    ],
)
def test_after_login_the_operator_stays_on_the_site(target: str | None, expected: str) -> None:
    """Only a path on this site is followed after login."""
    assert safe_next(target) == expected


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({}, "PANOPTIC_DASHBOARD_PASSWORD must be set"),
        ({"dashboard_password": "panoptic"}, "PANOPTIC_DASHBOARD_PASSWORD must be set"),
        ({"dashboard_password": "too-short"}, "at least 12 characters"),
        ({"dashboard_password": "a-long-enough-password"}, "PANOPTIC_DASHBOARD_SESSION_SECRET"),
    ],
)
def test_production_refuses_dashboard_defaults(overrides: dict[str, str], problem: str) -> None:
    """In production the dashboard needs its own password and session secret."""
    settings = Settings(
        env=Environment.PRODUCTION, database_url="postgresql://u@db/panoptic", **overrides
    )
    with pytest.raises(SettingsError, match=problem):
        settings.require_production_ready(database="dashboard", dashboard=True)


def test_production_accepts_a_configured_dashboard() -> None:
    """A real password and a long random secret pass; development needs neither."""
    Settings(
        env=Environment.PRODUCTION,
        database_url="postgresql://u@db/panoptic",
        dashboard_password="a-long-enough-password",
        dashboard_session_secret="x" * 40,
    ).require_production_ready(database="dashboard", dashboard=True)
    Settings().require_production_ready(database="dashboard", dashboard=True)
