"""API tokens: how they are made, stored and checked.

A token is `tasky_` followed by 43 URL-safe characters (256 random bits).
Only its SHA-256 digest is stored, so a copy of the store does not reveal
usable tokens. Because the secret is random and long, one unsalted digest
is enough; a slow password hash would only slow every request. Checking a
presented token compares its digest with every active token's digest in
constant time and without stopping at the first match. Persistence is
`tasky.auth.store`; which token a request needs is `tasky.auth.policy`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tasky.auth.roles import Role
from tasky.errors import BadRequest

TOKEN_PREFIX = "tasky_"
TOKEN_BYTES = 32
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Token:
    """A stored token without its secret: what `tasky token list` shows."""

    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class TokenDigest:
    """An active token's name, role and SHA-256 digest, as the server checks them."""

    name: str
    role: Role
    digest: str


@dataclass(frozen=True)
class Principal:
    """The sender of a request: a token's name and role, or the anonymous local caller."""

    name: str | None
    role: Role
    via: str  # "token", "ticket" or "anonymous"

    @property
    def label(self) -> str:
        return self.name if self.name is not None else "(anonymous)"


def new_secret() -> str:
    """Generate a new token secret."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def digest_of(secret: str) -> str:
    """Return the hex SHA-256 digest under which a token secret is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    """Return `name` if it is a valid token name; raise `BadRequest` (422) saying what is allowed."""
    if not NAME_PATTERN.match(name):
        raise BadRequest(
            f"invalid token name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            status=422,
            code="invalid_token_name",
            detail=[{"field": "name", "message": "letters, digits, '.', '_' or '-', at most 64"}],
        )
    return name


def find_token(secret: str, active: Sequence[TokenDigest]) -> TokenDigest | None:
    """Return the active token whose digest matches `secret`, comparing in constant time."""
    presented = digest_of(secret)
    found = None
    for candidate in active:
        # No early exit: the time taken does not depend on where the match is.
        if hmac.compare_digest(presented, candidate.digest):
            found = candidate
    return found


# A request with an unknown token rereads the tokens at most this often, so a
# token is usable as soon as it is created and a flood of bad tokens costs
# at most ten store reads a second.
MISS_RELOAD_INTERVAL_S = 0.1


class TokenCache:
    """The active tokens, read from the store at most once per `ttl_s` seconds.

    A token revoked with `tasky token revoke` while the server runs stops
    working within `ttl_s`. A new token works at once, because an unknown
    token makes `reload_after_miss` read the store again.
    """

    def __init__(self, load: Callable[[], Awaitable[list[TokenDigest]]], ttl_s: float = 1.0) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self._tokens: list[TokenDigest] = []
        self._loaded_at = float("-inf")

    async def active(self) -> list[TokenDigest]:
        now = time.monotonic()
        if now - self._loaded_at >= self.ttl_s:
            self._tokens = await self._load()
            self._loaded_at = now
        return self._tokens

    async def reload_after_miss(self) -> list[TokenDigest] | None:
        """Read the tokens again unless they were read in the last `MISS_RELOAD_INTERVAL_S`; None if not reread."""
        if time.monotonic() - self._loaded_at < MISS_RELOAD_INTERVAL_S:
            return None
        self.invalidate()
        return await self.active()

    def invalidate(self) -> None:
        """Forget the cached tokens, so the next request reads them again."""
        self._loaded_at = float("-inf")
