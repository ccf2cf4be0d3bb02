"""The HTTP API (``pip install 'eventledger[server]'``): see :func:`create_app`."""

from eventledger.http.app import create_app
from eventledger.http.auth import ApiKeyAuthenticator, Authenticator, Principal

__all__ = ["ApiKeyAuthenticator", "Authenticator", "Principal", "create_app"]
