"""The dashboard's login: credentials checked in constant time, signed expiring sessions, CSRF
tokens, and a per-client limit on failed logins.

A session is a signed cookie (itsdangerous) holding the user, a random session id and the
session's CSRF token; it expires a fixed time after login, whatever the activity. Logging out
revokes the session id in this process until the cookie would have expired anyway. The signing
salt includes a digest of the configured credentials, so changing the password ends every
session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE: Final = "panoptic_session"
LOGIN_CSRF_COOKIE: Final = "panoptic_login"
# Clients tracked by the login limiter at most; the least recently failing are forgotten first.
MAX_TRACKED_CLIENTS: Final = 10_000


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


@dataclass(frozen=True)
class Credentials:
    """The one operator login the dashboard accepts."""

    user: str
    password: str

    def check(self, user: str, password: str) -> bool:
        """Whether both match; compares digests in constant time, user and password alike."""
        user_ok = hmac.compare_digest(_digest(user), _digest(self.user))
        password_ok = hmac.compare_digest(_digest(password), _digest(self.password))
        return user_ok & password_ok

    @property
    def fingerprint(self) -> str:
        """Changes whenever the user or password does; never reveals either."""
        return hashlib.sha256(f"{self.user}\0{self.password}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Session:
    """A logged-in operator."""

    user: str
    session_id: str
    csrf_token: str
    issued_at: float


class SessionCodec:
    """Issues and opens session cookies; remembers sessions ended by logout."""

    def __init__(
        self,
        secret: str,
        credentials: Credentials,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._serializer = URLSafeTimedSerializer(
            secret, salt=f"panoptic-dashboard-session:{credentials.fingerprint}"
        )
        self._login_serializer = URLSafeTimedSerializer(secret, salt="panoptic-dashboard-login")
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        self._revoked: dict[str, float] = {}

    def issue(self, user: str) -> tuple[Session, str]:
        """A new session for `user` and its cookie value."""
        session = Session(user, secrets.token_urlsafe(16), secrets.token_urlsafe(24), self._clock())
        value = self._serializer.dumps(
            {"u": session.user, "s": session.session_id, "c": session.csrf_token}
        )
        return session, value

    def open(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None if it is missing, forged, expired or ended."""
        if not value:
            return None
        try:
            payload, signed_at = self._serializer.loads(value, return_timestamp=True)
        except BadSignature:
            return None
        issued = signed_at.timestamp()
        if not isinstance(payload, dict) or self._clock() - issued >= self.lifetime_seconds:
            return None
        session_id = payload.get("s")
        if not isinstance(session_id, str) or session_id in self._revoked:
            return None
        user, csrf = payload.get("u"), payload.get("c")
        if not isinstance(user, str) or not isinstance(csrf, str):
            return None
        return Session(user, session_id, csrf, issued)

    def revoke(self, session: Session) -> None:
        """Ends a session: its cookie is refused from now on, even if a copy was kept."""
        now = self._clock()
        self._revoked = {
            sid: until for sid, until in self._revoked.items() if until > now
        }  # forget sessions that have expired by themselves
        self._revoked[session.session_id] = session.issued_at + self.lifetime_seconds

    def login_token(self) -> tuple[str, str]:
        """A CSRF token for the login form and the cookie value that vouches for it."""
        token = secrets.token_urlsafe(24)
        return token, self._login_serializer.dumps(token)

    def check_login_token(self, cookie: str | None, submitted: str) -> bool:
        """Whether the login form's token is the one its cookie vouches for (valid one hour)."""
        if not cookie or not submitted:
            return False
        try:
            expected = self._login_serializer.loads(cookie, max_age=3600)
        except BadSignature:
            return False
        return isinstance(expected, str) and hmac.compare_digest(expected, submitted)


def same_token(expected: str, submitted: str) -> bool:
    """Compares CSRF tokens in constant time."""
    return bool(submitted) and hmac.compare_digest(expected.encode(), submitted.encode())


class LoginThrottle:
    """Counts failed logins per client over the last minute; refuses a client at the limit."""

    WINDOW_SECONDS: Final = 60.0

    def __init__(self, failures_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self._limit = failures_per_minute
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 when it may try now."""
        failures = self._recent(client)
        if len(failures) < self._limit:
            return 0
        return max(1, int(failures[0] + self.WINDOW_SECONDS - self._clock()) + 1)

    def failed(self, client: str) -> None:
        """Records a failed attempt."""
        failures = self._recent(client)
        failures.append(self._clock())
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forgets a client's failures once it logs in."""
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        horizon = self._clock() - self.WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only, never another origin."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
