"""The dashboard's login pieces without a server: credentials, sessions, throttle, redirects."""

from __future__ import annotations

import pytest

from panoptic.core.settings import Environment, Settings, SettingsError
from services.dashboard.auth import (
    Credentials,
    LoginClient,
    LoginThrottle,
    SessionCodec,
    safe_next,
    same_token,
)
from tests.support.dashboard import ManualClock

SECRET = "unit-test-session-secret-0123456789"


def codec(clock: ManualClock, phrase: str = "right", lifetime: float = 60) -> SessionCodec:
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
    clock = ManualClock()
    sessions = codec(clock)
    session, cookie = sessions.issue("admin")
    opened = sessions.open(cookie)
    assert opened is not None
    assert (opened.user, opened.csrf_token) == ("admin", session.csrf_token)
    clock.now += 59
    assert sessions.open(cookie) is not None
    clock.now += 2
    assert sessions.open(cookie) is None


def test_a_session_is_stamped_and_aged_by_one_clock() -> None:
    """The cookie's stamp reads the codec's clock as its expiry check does: a session issued an
    hour before the real time, by that clock, is over a minute later by that clock."""
    clock = ManualClock()
    clock.now -= 3600
    sessions = codec(clock)
    _, cookie = sessions.issue("admin")
    clock.now += 59
    assert sessions.open(cookie) is not None
    clock.now += 2
    assert sessions.open(cookie) is None


@pytest.mark.parametrize("value", [None, "", "garbage", "a.b.c"])
def test_missing_or_garbled_cookies_open_to_nothing(value: str | None) -> None:
    """Anything but a cookie this codec signed is no session."""
    assert codec(ManualClock()).open(value) is None


def test_a_tampered_cookie_is_refused() -> None:
    """Changing one character of a signed cookie breaks it."""
    sessions = codec(ManualClock())
    _, cookie = sessions.issue("admin")
    # Not the last character: base64's last one may carry padding bits that decode the same.
    position = len(cookie) - 10
    replacement = "A" if cookie[position] != "A" else "B"
    tampered = cookie[:position] + replacement + cookie[position + 1 :]
    assert sessions.open(tampered) is None


def test_changing_the_password_ends_every_session() -> None:
    """Sessions are bound to the credentials they were opened with."""
    clock = ManualClock()
    _, cookie = codec(clock, phrase="old").issue("admin")
    assert codec(clock, phrase="old").open(cookie) is not None
    assert codec(clock, phrase="new").open(cookie) is None


def test_a_revoked_session_stays_closed() -> None:
    """After logout the same cookie is refused; other sessions go on."""
    sessions = codec(ManualClock())
    session, cookie = sessions.issue("admin")
    _, other = sessions.issue("admin")
    sessions.revoke(session)
    assert sessions.open(cookie) is None
    assert sessions.open(other) is not None


def test_the_login_form_token_is_vouched_for_by_its_cookie() -> None:
    """The login form's token matches only the cookie issued with it."""
    sessions = codec(ManualClock())
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


ALICE_ADDRESS = LoginClient.of(None, "10.0.0.1")


def waits_while_failing(throttle: LoginThrottle, clock: ManualClock, attempts: int) -> list[float]:
    """The wait before each of `attempts` wrong passwords from ALICE_ADDRESS for `admin`, each
    sent as soon as the throttle allows; checks the attempt is allowed once waited for."""
    waits = []
    for _ in range(attempts):
        wait = throttle.retry_after("admin", ALICE_ADDRESS)
        waits.append(wait)
        clock.now += wait
        assert throttle.retry_after("admin", ALICE_ADDRESS) == 0
        throttle.failed("admin", ALICE_ADDRESS)
    return waits


def test_repeated_failures_wait_longer_each_time_up_to_a_cap_and_never_lock_out() -> None:
    """Below the limit a failure costs nothing; from it on the wait before the next attempt
    doubles from one second up to five, and an attempt is always allowed once it has waited."""
    clock = ManualClock()
    throttle = LoginThrottle(3, clock=clock)
    assert waits_while_failing(throttle, clock, 10) == [0, 0, 0, 1, 2, 4, 5, 5, 5, 5]
    clock.now += 2
    assert throttle.retry_after("admin", ALICE_ADDRESS) == pytest.approx(3)
    clock.now += 3
    assert throttle.retry_after("admin", ALICE_ADDRESS) == 0


def test_failures_are_forgotten_after_a_minute_or_a_login() -> None:
    """Failures older than a minute no longer count; a login forgets that client's failures."""
    clock = ManualClock()
    throttle = LoginThrottle(3, clock=clock)
    assert waits_while_failing(throttle, clock, 4) == [0, 0, 0, 1]
    clock.now += 61
    assert waits_while_failing(throttle, clock, 4) == [0, 0, 0, 1]
    assert throttle.retry_after("admin", ALICE_ADDRESS) == 2
    throttle.succeeded("admin", ALICE_ADDRESS)
    assert throttle.retry_after("admin", ALICE_ADDRESS) == 0


def test_a_client_that_has_not_failed_never_waits() -> None:
    """Another address, a browser that logged in before (even at the same address) and another
    user at the same address may try at once after many failures from one address."""
    clock = ManualClock()
    throttle = LoginThrottle(3, clock=clock)
    waits_while_failing(throttle, clock, 8)
    assert throttle.retry_after("admin", ALICE_ADDRESS) > 0
    assert throttle.retry_after("admin", LoginClient.of(None, "10.0.0.2")) == 0
    assert throttle.retry_after("admin", LoginClient.of("device-1", "10.0.0.1")) == 0
    assert throttle.retry_after("bob", ALICE_ADDRESS) == 0


def test_a_failing_address_also_waits_for_the_users_failures_from_elsewhere() -> None:
    """Guesses spread over addresses slow down: after one failure, a new address waits as long
    as the user's failures from everywhere would have it; a known browser waits only for its
    own failures."""
    clock = ManualClock()
    throttle = LoginThrottle(3, clock=clock)
    waits_while_failing(throttle, clock, 6)  # the user's 6th failure: a wait of 5 s
    other, browser = LoginClient.of(None, "10.0.0.2"), LoginClient.of("device-1", "10.0.0.3")
    throttle.failed("admin", other)
    throttle.failed("admin", browser)
    assert throttle.retry_after("admin", other) == pytest.approx(5)
    assert throttle.retry_after("admin", browser) == 0


def test_a_device_cookie_names_a_browser_that_logged_in_as_its_user_only() -> None:
    """A device cookie opens to a device id for the user it was issued for, and to nothing for
    another user or when forged; each login gets a new one."""
    sessions = codec(ManualClock())
    cookie = sessions.device_cookie("admin")
    device = sessions.device_of(cookie, "admin")
    assert device
    assert sessions.device_of(sessions.device_cookie("admin"), "admin") not in (None, device)
    assert sessions.device_of(cookie, "bob") is None
    assert sessions.device_of("forged." + cookie, "admin") is None
    assert sessions.device_of(None, "admin") is None


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
