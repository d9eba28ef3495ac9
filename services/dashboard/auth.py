"""The dashboard's login: credentials checked in constant time, signed expiring sessions, CSRF
tokens, and failed logins slowed down per user and client.

A session is a signed cookie (itsdangerous) holding the user, a random session id and the
session's CSRF token; it expires a fixed time after login, whatever the activity. Logging out
revokes the session id in this process until the cookie would have expired anyway. The signing
salt includes a digest of the configured credentials, so changing the password ends every
session.

Failed logins are slowed down, never locked out, as OWASP's authentication cheat sheet advises:
after a few failures a user and client must wait before their next attempt, a wait that doubles
with each further failure up to a few seconds. A client is a browser that has logged in as that
user before (it holds a signed device cookie, OWASP's "device cookies"), else an address; so
wrong guesses from an address, even the operator's own behind a NAT, never hold up a browser
that has logged in before, nor any client that has not failed itself.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

SESSION_COOKIE: Final = "panoptic_session"
LOGIN_CSRF_COOKIE: Final = "panoptic_login"
DEVICE_COOKIE: Final = "panoptic_device"
# A browser stays known as one that has logged in this long after its last login.
DEVICE_SECONDS: Final = 30 * 24 * 3600
# Users and clients tracked by the login throttle at most; the least recently failing go first.
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


class _ClockedSigner(TimestampSigner):
    """itsdangerous's timestamp signer reading the session codec's clock, so that a session's
    stamp and the check of its age read one clock, the real one or a test's."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        """Now, in the whole seconds a stamp holds."""
        return int(self._clock())


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
            secret,
            salt=f"panoptic-dashboard-session:{credentials.fingerprint}",
            signer=_ClockedSigner,
            signer_kwargs={"clock": clock},
        )
        self._login_serializer = URLSafeTimedSerializer(secret, salt="panoptic-dashboard-login")
        self._device_serializer = URLSafeTimedSerializer(secret, salt="panoptic-dashboard-device")
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

    def device_cookie(self, user: str) -> str:
        """A cookie value that marks this browser as one that has logged in as `user`."""
        return self._device_serializer.dumps({"u": user, "d": secrets.token_urlsafe(16)})

    def device_of(self, cookie: str | None, user: str) -> str | None:
        """The device id in a device cookie issued for `user`, or None."""
        if not cookie:
            return None
        try:
            payload = self._device_serializer.loads(cookie, max_age=DEVICE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(payload, dict) or payload.get("u") != user:
            return None
        device = payload.get("d")
        return device if isinstance(device, str) else None

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


@dataclass(frozen=True)
class LoginClient:
    """Who tries to log in: a browser that has logged in as the user before, or an address."""

    key: str
    known_device: bool

    @classmethod
    def of(cls, device: str | None, address: str) -> LoginClient:
        """The device when the request carries a device cookie for the user, else the address."""
        if device is not None:
            return cls(f"device:{device}", True)
        return cls(f"address:{address}", False)


class LoginThrottle:
    """Slows failed logins down per user and client, and per user, without ever locking out.

    Failures below `failures_per_minute` in a minute cost nothing; from that one on, the user
    and client wait FIRST_DELAY before their next attempt, twice as long after each further
    failure, up to MAX_DELAY. A client that has failed for a user, unless it is a known device,
    also waits as long as the user's failures from every client would have it wait: guesses
    spread over many addresses slow down too. A client that has not failed never waits.
    """

    WINDOW_SECONDS: Final = 60.0
    FIRST_DELAY: Final = 1.0
    MAX_DELAY: Final = 5.0

    def __init__(self, failures_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self._limit = failures_per_minute
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def retry_after(self, user: str, client: LoginClient) -> float:
        """Seconds until `client` may try to log in as `user` again; 0 when it may try now."""
        own = self._recent(("pair", f"{client.key}\0{user}"))
        if not own:
            return 0.0
        wait = self._wait(own)
        if not client.known_device:
            wait = max(wait, self._wait(self._recent(("user", user))))
        return wait

    def failed(self, user: str, client: LoginClient) -> None:
        """Records a failed attempt."""
        for key in (("pair", f"{client.key}\0{user}"), ("user", user)):
            failures = self._recent(key)
            failures.append(self._clock())
            self._failures[key] = failures
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)

    def succeeded(self, user: str, client: LoginClient) -> None:
        """Forgets this client's failures for `user`; those of other clients still count."""
        self._failures.pop(("pair", f"{client.key}\0{user}"), None)

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a minute."""
        if failures < self._limit:
            return 0.0
        # Bounded exponent: failures that came in at once can be many, and 2.0**1100 overflows.
        return min(self.MAX_DELAY, self.FIRST_DELAY * 2.0 ** min(failures - self._limit, 32))

    def _wait(self, failures: deque[float]) -> float:
        if not failures:
            return 0.0
        return max(0.0, failures[-1] + self.delay(len(failures)) - self._clock())

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures.get(key, deque())
        horizon = self._clock() - self.WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures


def retry_after_header(seconds: float) -> str:
    """A wait as Retry-After's whole seconds, rounded up so that waiting it is always enough."""
    return str(max(1, math.ceil(seconds)))


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only, never another origin."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
