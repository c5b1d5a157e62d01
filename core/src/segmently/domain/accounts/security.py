"""Passwords, tokens and keys: hashing and signing in one place."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import secrets
from typing import Any

import bcrypt
import jwt

from segmently.db.base import new_id, utcnow

JWT_ALGORITHM = "HS256"
TOKEN_DAYS = 30
DEFAULT_ROUNDS = 12
"""The bcrypt cost when ``SEGMENTLY_BCRYPT_ROUNDS`` is unset (the settings' default)."""
# a real bcrypt hash to check against when the account does not exist, so timing matches
_ABSENT_HASH = bcrypt.hashpw(b"absent-account", bcrypt.gensalt(10)).decode()


def hash_password(password: str, rounds: int) -> str:
    """A bcrypt hash of ``password`` (cost ``rounds``, at least 10)."""
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(max(10, rounds))).decode()


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether ``password`` matches; takes the same time when there is no hash to check."""
    ok = bcrypt.checkpw(password.encode()[:72], (hashed or _ABSENT_HASH).encode())
    return ok and hashed is not None


@functools.lru_cache(maxsize=8)
def absent_hash(rounds: int) -> str:
    """A bcrypt hash of cost ``rounds`` (rounded up as in :func:`hash_password`) for unknown accounts.

    Made once per cost, so checking a password of an account that does not exist costs
    as much as checking one that does.
    """
    return bcrypt.hashpw(b"absent-account", bcrypt.gensalt(max(10, rounds))).decode()


async def hash_password_async(password: str, rounds: int) -> str:
    """:func:`hash_password` in a worker thread: bcrypt is slow on purpose, the event loop must not wait."""
    return await asyncio.to_thread(hash_password, password, rounds)


async def verify_password_async(password: str, hashed: str | None, rounds: int = DEFAULT_ROUNDS) -> bool:
    """:func:`verify_password` in a worker thread.

    With no hash (unknown account) the password is checked against :func:`absent_hash` of
    cost ``rounds``, the cost real hashes are made with, so both paths take the same time.
    """

    def check() -> bool:
        return verify_password(password, hashed or absent_hash(rounds)) and hashed is not None

    return await asyncio.to_thread(check)


def issue_token(secret: str, user_id: str, token_version: int, now: dt.datetime | None = None) -> str:
    """A JWT valid for 30 days; the database is still checked on every request."""
    issued = now or utcnow()
    claims = {
        "sub": user_id,
        "tv": token_version,
        "iat": int(issued.timestamp()),
        "exp": int((issued + dt.timedelta(days=TOKEN_DAYS)).timestamp()),
        "jti": new_id(),
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def read_token(secret: str, token: str) -> dict[str, Any] | None:
    """The claims of a token we signed and that has not expired, else None."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["sub", "exp", "iat"]}
        )
    except jwt.PyJWTError:
        return None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("tv"), int):
        return None
    return claims


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token of ``nbytes`` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def sha256(value: str) -> str:
    """Hex SHA-256, for storing tokens and keys we must be able to look up but never read back."""
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def site_api_key() -> str:
    """A new public site key ``seg_live_…``."""
    return "seg_live_" + secrets.token_hex(16)


def management_key() -> str:
    """A new Management API key ``seg_mgmt_…`` (shown once, stored as SHA-256)."""
    return "seg_mgmt_" + secrets.token_urlsafe(32)
