"""Accounts: passwords, signed tokens, machine tokens and the login rate limit.

Passwords are hashed with argon2id; bearer tokens, session cookies and
acknowledgement links are short-lived JWTs signed with one key (from the
settings, or made once and kept in the store so tokens survive a restart).
Machine tokens (for Prometheus, scripts) are long random strings shown once
and kept only as a SHA-256 digest: they carry enough entropy that a slow hash
would add nothing but latency to every scrape.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.settings import AuthSettings
from gateway.store.accounts import ROLES, SECRET_KEY_META, Role, UserRow
from gateway.store.base import Store

MACHINE_PREFIX = "tmk_"
ALGORITHM = "HS256"
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("a password nobody has")
"""Verified against when the account does not exist, so timing does not tell which names exist."""


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why, naming the field."""


class LoginRefused(Exception):
    """Wrong name or password, or too many attempts; `retry_after_s` is set when rate-limited."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: an account (by password, session or machine token) or nobody."""

    name: str
    role: Role | None
    homes: frozenset[str] | None = None  # None: every home (admin, engineer)
    contact: str | None = None

    @property
    def display(self) -> str:
        """The name recorded with what this person does (a carer's contact name, as they are called)."""
        return self.contact or self.name

    def sees(self, home: str) -> bool:
        return self.role is not None and (self.homes is None or home in self.homes)

    def visible(self, homes: Iterable[str]) -> list[str]:
        return sorted(h for h in homes if self.sees(h))


ANONYMOUS = Principal("", None, frozenset())


def principal_of(user: UserRow) -> Principal:
    every_home = user.role in ("admin", "engineer")
    return Principal(user.name, user.role, None if every_home else frozenset(user.homes), user.contact)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_new_user(name: str, role: str, homes: tuple[str, ...], contact: str | None, password: str) -> None:
    problems = []
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        problems.append("name: letters, digits, '.', '-' or '_', up to 100 characters")
    if role not in ROLES:
        problems.append(f"role: one of {', '.join(ROLES)}, got {role!r}")
    if role in ("coordinator", "carer") and not homes:
        problems.append(f"homes: a {role} needs at least one home (--homes H1,H2)")
    if role == "carer" and not contact:
        problems.append("contact: a carer is linked to their contact entry (--contact NAME)")
    if len(password) < 10:
        problems.append("password: at least 10 characters")
    if problems:
        raise AccountError("; ".join(problems))


@dataclass
class LoginLimiter:
    """Failed logins per account and per source address in a sliding window."""

    per_account: int
    per_address: int
    window: timedelta
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def retry_after(self, account: str, address: str, now: datetime) -> int | None:
        """Seconds to wait when either limit is reached, else None."""
        waits = []
        for key, limit in ((f"a:{account}", self.per_account), (f"s:{address}", self.per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append((times[0] + self.window - now).total_seconds())
        return max(1, int(max(waits)) + 1) if waits else None

    def failed(self, account: str, address: str, now: datetime) -> None:
        for key in (f"a:{account}", f"s:{address}"):
            self._recent(key, now).append(now)
        if len(self._failures) > 100_000:  # a scan of random names must not grow memory for ever
            self._failures = {k: v for k, v in self._failures.items() if self._recent(k, now)}

    def succeeded(self, account: str) -> None:
        self._failures.pop(f"a:{account}", None)


class Accounts:
    """Everything about who someone is; `gateway.access` decides what they may do."""

    def __init__(self, store: Store, settings: AuthSettings, now: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.now = now
        self._key = settings.secret_key.get_secret_value() if settings.secret_key else ""
        self.limiter = LoginLimiter(settings.login_attempts_per_account, settings.login_attempts_per_address,
                                    timedelta(minutes=settings.login_window_min))

    async def start(self) -> None:
        """Without a configured key, make one and keep it in the store (the same key after a restart)."""
        if not self._key:
            self._key = await self.store.set_meta_once(SECRET_KEY_META, secrets.token_urlsafe(48))

    def use_ephemeral_key(self) -> None:
        if not self._key:
            self._key = secrets.token_urlsafe(48)

    @property
    def ready(self) -> bool:
        return bool(self._key)

    # -- users --------------------------------------------------------------------------

    async def add_user(self, name: str, role: str, homes: tuple[str, ...], contact: str | None,
                       password: str) -> UserRow:
        check_new_user(name, role, homes, contact, password)
        user = UserRow(name, role, homes, contact, hash_password(password), self.now())  # type: ignore[arg-type]
        await self.store.add_user(user)
        return user

    async def new_machine_token(self, name: str) -> str:
        if await self.store.get_user(name) is None:
            raise AccountError(f"name: no user called {name!r}")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        await self.store.add_machine_token(token_id, name, _digest(secret), self.now())
        return f"{MACHINE_PREFIX}{token_id}_{secret}"

    # -- logging in ---------------------------------------------------------------------

    async def login(self, name: str, password: str, address: str) -> UserRow:
        now = self.now()
        wait = self.limiter.retry_after(name, address, now)
        if wait is not None:
            raise LoginRefused(f"Too many failed attempts. Try again in {_minutes(wait)}.", wait)
        user = await self.store.get_user(name)
        matches = _verify(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not matches:
            self.limiter.failed(name, address, now)
            raise LoginRefused("That name and password do not match an account.")
        self.limiter.succeeded(name)
        return user

    def issue(self, user: UserRow, kind: str = "access") -> tuple[str, int]:
        """A signed token for `user`: `access` (bearer) or `session` (the web pages' cookie)."""
        minutes = self.settings.token_minutes if kind == "access" else self.settings.session_minutes
        return self.sign({"sub": user.name, "typ": kind}, timedelta(minutes=minutes)), minutes * 60

    async def principal(self, token: str) -> Principal | None:
        """The account a bearer token or session cookie belongs to, if it is valid and still exists."""
        if token.startswith(MACHINE_PREFIX):
            return await self._machine(token)
        claims = self.verify(token, ("access", "session"))
        if claims is None:
            return None
        user = await self.store.get_user(str(claims.get("sub", "")))
        return principal_of(user) if user else None

    async def _machine(self, token: str) -> Principal | None:
        token_id, _, secret = token.removeprefix(MACHINE_PREFIX).partition("_")
        found = await self.store.machine_token(token_id)
        if found is None or not hmac.compare_digest(found[1], _digest(secret)):
            return None
        user = await self.store.get_user(found[0])
        return principal_of(user) if user else None

    def csrf_for(self, session: str) -> str:
        """The CSRF token of one session: derived, so nothing more is stored or sent in the cookie."""
        return hmac.new(self._key.encode(), b"csrf:" + session.encode(), hashlib.sha256).hexdigest()[:40]

    def csrf_ok(self, session: str, sent: str) -> bool:
        return hmac.compare_digest(self.csrf_for(session), sent)

    def metrics_token_ok(self, token: str) -> bool:
        wanted = self.settings.metrics_token
        return wanted is not None and hmac.compare_digest(token, wanted.get_secret_value())

    # -- signing ------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], lifetime: timedelta) -> str:
        now = self.now()
        body = {**claims, "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
        return jwt.encode(body, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, kinds: tuple[str, ...]) -> dict[str, Any] | None:
        """The claims of a token we signed, of one of `kinds`, not expired (by our clock); else None."""
        claims = self._genuine(token, kinds)
        if claims is None or int(claims["exp"]) <= self.now().timestamp():
            return None
        return claims

    def expired(self, token: str, kinds: tuple[str, ...]) -> bool:
        """Whether a token we did sign, of one of `kinds`, is past its expiry: a link opened too
        late deserves "too late" rather than "invalid"."""
        claims = self._genuine(token, kinds)
        return claims is not None and int(claims["exp"]) <= self.now().timestamp()

    def _genuine(self, token: str, kinds: tuple[str, ...]) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                                options={"verify_exp": False, "require": ["exp", "typ"]})
        except jwt.PyJWTError:
            return None
        return claims if claims.get("typ") in kinds else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _verify(digest: str, password: str) -> bool:
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
