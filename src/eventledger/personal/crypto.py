"""Envelope encryption: each subject's data key encrypts their values (AES-256-GCM);
the data keys are stored wrapped by a key-encryption key that never enters the store.

The key-encryption key sits behind :class:`KeyWrapper`, so that a KMS (AWS KMS,
Google Cloud KMS, Vault transit) can wrap and unwrap instead of a local key:

>>> import asyncio, os
>>> wrapper = LocalKeyWrapper(os.urandom(32))
>>> data_key = new_data_key()
>>> wrapped = asyncio.run(wrapper.wrap("customer-7", data_key))
>>> asyncio.run(wrapper.unwrap("customer-7", wrapped)) == data_key
True
>>> sealed = seal(AESGCM(data_key), "ann@example.com", b"event-id|email")
>>> open_sealed(AESGCM(data_key), sealed, b"event-id|email")
'ann@example.com'
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventledger import _json
from eventledger.errors import InvalidInput

__all__ = [
    "AESGCM",
    "ENVIRONMENT_VARIABLE",
    "KeyWrapper",
    "LocalKeyWrapper",
    "SealBroken",
    "new_data_key",
    "new_key_text",
    "open_sealed",
    "seal",
]

ENVIRONMENT_VARIABLE = "EVENTLEDGER_KEY_ENCRYPTION_KEY"
"""Where :meth:`LocalKeyWrapper.from_environment` finds the key-encryption key: 32
random bytes, base64 (``eventledger personal-key`` makes one)."""

_NONCE = 12


class SealBroken(Exception):
    """A sealed value or a wrapped key does not open with the key given: the key is
    wrong, or the bytes were changed."""


@runtime_checkable
class KeyWrapper(Protocol):
    """Wraps and unwraps data keys with a key-encryption key (a local key, or a KMS).
    `subject` is bound to the wrapped key, so a wrapped key moved to another subject
    does not unwrap."""

    async def wrap(self, subject: str, data_key: bytes) -> bytes: ...

    async def unwrap(self, subject: str, wrapped: bytes) -> bytes: ...


class LocalKeyWrapper:
    """A key-encryption key held by this process (32 bytes, AES-256-GCM)."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise InvalidInput("a key-encryption key is 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    @classmethod
    def from_text(cls, text: str) -> LocalKeyWrapper:
        """The key written as base64 (standard or URL-safe alphabet)."""
        cleaned = text.strip()
        try:
            key = base64.urlsafe_b64decode(
                cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4)
            )
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise InvalidInput(
                f"{ENVIRONMENT_VARIABLE} must be 32 random bytes in base64 (44 characters);"
                " make one with: eventledger personal-key"
            )
        return cls(key)

    @classmethod
    def from_environment(cls) -> LocalKeyWrapper | None:
        """The key in ``EVENTLEDGER_KEY_ENCRYPTION_KEY``, or None when it is not set."""
        text = os.environ.get(ENVIRONMENT_VARIABLE)
        return cls.from_text(text) if text else None

    async def wrap(self, subject: str, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data_key, subject.encode())

    async def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], subject.encode())
        except InvalidTag:
            raise SealBroken(
                f"the data key of subject {subject!r} does not unwrap with this key-encryption"
                f" key (is {ENVIRONMENT_VARIABLE} the one the store was written with?)"
            ) from None


def new_key_text() -> str:
    """A fresh key-encryption key, as ``EVENTLEDGER_KEY_ENCRYPTION_KEY`` takes it."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(data_key: AESGCM, value: Any, associated: bytes) -> str:
    """`value` (any JSON value) encrypted with a fresh nonce, as text (base64)."""
    nonce = os.urandom(_NONCE)
    sealed = data_key.encrypt(nonce, _json.dumps(value), associated)
    return binascii.b2a_base64(nonce + sealed, newline=False).decode()


def open_sealed(data_key: AESGCM, text: Any, associated: bytes) -> Any:
    """The value :func:`seal` sealed."""
    if not isinstance(text, str):
        raise SealBroken(f"a sealed value is text, not {type(text).__name__}")
    try:
        raw = binascii.a2b_base64(text)
        return _json.loads(data_key.decrypt(raw[:_NONCE], raw[_NONCE:], associated))
    except (InvalidTag, binascii.Error, ValueError):
        raise SealBroken("a sealed value does not open with its subject's key") from None
