"""Sessions of the admin page: a signed cookie, and the token its buttons carry.

A person logs in with an API key; the server answers with a cookie that names the
key's owner, scopes and id, when it expires, and a CSRF token, signed with the
server's session secret (HMAC-SHA256). The key itself is never in the cookie. Every
request checks the signature and the expiry, and, for keys kept in the store, that the
key is still active: revoking a key ends its sessions. Forms that change something
send the CSRF token back; the cookie is ``HttpOnly`` and ``SameSite=Strict``.

The secret comes from ``EVENTLEDGER_SESSION_SECRET`` (or ``create_app(...,
session_secret=...)``); without one, each process makes its own at start, so
sessions end when it restarts and do not pass between processes (``eventledger
serve --workers N`` shares one among its workers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass

import orjson

from eventledger.errors import InvalidInput

__all__ = ["COOKIE", "SECRET_ENV", "Session", "SessionSigner", "session_secret"]

COOKIE = "eventledger_session"
SECRET_ENV = "EVENTLEDGER_SESSION_SECRET"  # noqa: S105 (the variable's name, not a secret)
DEFAULT_LIFETIME = 8 * 3600.0


@dataclass(frozen=True, slots=True)
class Session:
    actor: str
    scopes: frozenset[str]
    key_id: str | None
    """The API key's id, when the key is one of the store's (checked on every request)."""
    expires: float
    """Seconds since the epoch."""
    csrf: str


def session_secret(configured: str | bytes | None = None) -> bytes:
    """The secret that signs sessions: given, from the environment, or made now."""
    value = configured if configured is not None else os.environ.get(SECRET_ENV)
    if value is None:
        return secrets.token_bytes(32)
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) < 16:
        raise InvalidInput(
            f"the session secret ({SECRET_ENV}) must be at least 16 bytes;"
            ' make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return raw


class SessionSigner:
    """Issues and checks session cookies."""

    def __init__(self, secret: bytes, lifetime: float = DEFAULT_LIFETIME) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def issue(self, actor: str, scopes: frozenset[str], key_id: str | None) -> tuple[str, Session]:
        session = Session(
            actor, scopes, key_id, time.time() + self.lifetime, secrets.token_urlsafe(24)
        )
        body = _encode(
            orjson.dumps(
                {
                    "a": session.actor,
                    "s": sorted(session.scopes),
                    "k": session.key_id,
                    "e": session.expires,
                    "c": session.csrf,
                }
            )
        )
        return f"{body}.{self._sign(body)}", session

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie holds, if it is signed by us and has not expired."""
        if not cookie or len(cookie) > 4096 or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not _same(signature, self._sign(body)):
            return None
        try:
            data = orjson.loads(_decode(body))
            session = Session(
                str(data["a"]),
                frozenset(str(s) for s in data["s"]),
                None if data["k"] is None else str(data["k"]),
                float(data["e"]),
                str(data["c"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires > time.time() else None

    @staticmethod
    def token_matches(session: Session, token: str | None) -> bool:
        return isinstance(token, str) and _same(token, session.csrf)

    def _sign(self, body: str) -> str:
        return _encode(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())


def _same(given: str, expected: str) -> bool:
    """In constant time (how much of a guess is right never shows in how long the answer
    takes), and as bytes: `given` comes from the client and may be any text."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
