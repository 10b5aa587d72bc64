"""MQTT credentials of wristbands, hashed in Mosquitto's password-file format.

``$7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>`` is what ``mosquitto_passwd``
writes (Mosquitto 2.x), so the registry can export a password file the broker
loads directly, and a revoked band's line simply disappears from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_ITERATIONS = 101
_SALT_BYTES = 12


def new_secret() -> str:
    """A fresh device password: 160 bits, URL-safe."""
    return secrets.token_urlsafe(20)


def hash_secret(secret: str, *, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = hashed.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    salt = base64.b64decode(salt_b64)
    expected = base64.b64decode(digest_b64)
    actual = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, int(iterations))
    return hmac.compare_digest(actual, expected)
