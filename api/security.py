"""Credentials: argon2 password hashes, signed access tokens, refresh tokens, API keys,
and the login rate limiter (pure: the caller passes ``now``).

Access tokens are short-lived HS256 JWTs naming the user and the login session
(``sid``); refresh tokens are opaque random strings whose SHA-256 is stored, so
the database never holds a usable token. API keys are ``eck_<prefix>_<secret>``:
the prefix finds the row, the SHA-256 of the whole key is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER: Final = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory profile
_ALGORITHM: Final = "HS256"
_AUDIENCE: Final = "eldercare-api"
API_KEY_PREFIX: Final = "eck_"
# verified against when the username is unknown, so a miss costs as much as a hit
_DUMMY_HASH: Final = _HASHER.hash("not-a-password-of-anyone")


class InvalidToken(Exception):  # noqa: N818 - reads as the domain's word
    """A token that is malformed, expired, forged or for someone else."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    try:
        return _HASHER.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: uuid.UUID
    expires_at: datetime


def issue_access_token(
    *, user_id: int, session_id: uuid.UUID, secret: str, now: datetime, ttl: timedelta
) -> str:
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "aud": _AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_access_token(token: str, *, secret: str, now: datetime) -> AccessClaims:
    """The claims of a valid token; :class:`InvalidToken` otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["sub", "sid", "exp"], "verify_exp": False},
        )
        expires = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
        if expires <= now:
            raise InvalidToken("the access token has expired")
        return AccessClaims(int(claims["sub"]), uuid.UUID(str(claims["sid"])), expires)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken("the access token is not valid") from exc


def new_refresh_token(session_id: uuid.UUID) -> str:
    """``<session id>.<256 random bits>``: the session is found without a scan."""
    return f"{session_id}.{secrets.token_urlsafe(32)}"


def split_refresh_token(token: str) -> uuid.UUID:
    sid, _, rest = token.partition(".")
    if not rest:
        raise InvalidToken("the refresh token is not valid")
    try:
        return uuid.UUID(sid)
    except ValueError as exc:
        raise InvalidToken("the refresh token is not valid") from exc


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digests_match(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), digest)


def new_api_key() -> tuple[str, str]:
    """(prefix, key): the prefix is stored and shown; the key is shown once."""
    prefix = secrets.token_hex(4)
    return prefix, f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def api_key_prefix(key: str) -> str | None:
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, rest = key[len(API_KEY_PREFIX) :].partition("_")
    return prefix if sep and rest and len(prefix) == 8 else None


class LoginLimiter:
    """At most ``attempts`` failed logins per key (username, client address) in ``window``.

    Pure over the ``now`` it is given. Per process: with several API processes
    each keeps its own window (documented in docs/api.md).
    """

    def __init__(self, *, attempts: int, window: timedelta, max_keys: int = 100_000) -> None:
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        # oldest key first: evicted in constant time (eldercare.bounded says why)
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, key: str, now: datetime) -> int | None:
        """Seconds to wait if ``key`` is locked out now, else None."""
        failures = self._recent(key, now)
        if len(failures) < self.attempts:
            return None
        return max(1, int((failures[0] + self.window - now).total_seconds()) + 1)

    def failed(self, key: str, now: datetime) -> None:
        if len(self._failures) >= self.max_keys:  # bounded memory under a spray of names
            self._failures.popitem(last=False)
        self._recent(key, now)
        self._failures.setdefault(key, deque()).append(now)

    def reserve(self, key: str, now: datetime) -> int | None:
        """Take one attempt for ``key``: seconds to wait if it is locked out, else None
        with the attempt already counted as failed (:meth:`succeeded` clears it).

        Check and count are one step, with no await between them: an attempt counted
        only once its password was verified (argon2, tens of ms in a thread) let any
        number of concurrent guesses past the check before the first was counted (40 at
        once: 13 verified, limit 5; found by review 2026-12-04).
        """
        wait = self.retry_after(key, now)
        if wait is None:
            self.failed(key, now)
        return wait

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
