"""The server's pieces: the HTTP API (``pip install 'eventledger[server]'``; see
:func:`create_app`) and the API keys it checks (:class:`ApiKeys`, no server needed).

>>> from eventledger.http import ApiKeys, create_app
"""

from typing import TYPE_CHECKING, Any

from eventledger.http.keys import SCOPES, ApiKey, ApiKeys

if TYPE_CHECKING:
    from eventledger.http.app import create_app
    from eventledger.http.auth import ApiKeyAuthenticator, Authenticator, Principal
    from eventledger.http.limits import RateLimits

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyAuthenticator",
    "ApiKeys",
    "Authenticator",
    "Principal",
    "RateLimits",
    "create_app",
]


def __getattr__(name: str) -> Any:
    # The web framework loads only when the server is asked for.
    if name == "create_app":
        from eventledger.http import app

        return app.create_app
    if name in ("ApiKeyAuthenticator", "Authenticator", "Principal"):
        from eventledger.http import auth

        return getattr(auth, name)
    if name == "RateLimits":
        from eventledger.http import limits

        return limits.RateLimits
    raise AttributeError(f"module 'eventledger.http' has no attribute {name!r}")
