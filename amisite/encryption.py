"""Secrets encrypted at rest (Fernet, keys from AMI_SECRETS_KEY); never logged, never echoed."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("AMI_SECRETS_KEY is not set: secrets cannot be stored")
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured("AMI_SECRETS_KEY is not a valid Fernet key list") from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.SECRETS_ENCRYPTION_KEYS))


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with AMI_SECRETS_KEY (wrong or rotated-out key)"
        ) from None


class Secret(str):
    """A decrypted secret whose repr never shows the value (so it cannot leak into logs)."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def masked(self) -> str:
        return "set" if self else ""


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; Python code sees a `Secret`."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return Secret("")
        return Secret(decrypt(value))

    def to_python(self, value):
        if isinstance(value, Secret) or value is None:
            return value
        return Secret(value)

    def get_prep_value(self, value):
        if value in (None, ""):
            return ""
        return encrypt(str(value))
