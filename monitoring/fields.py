"""Secrets at rest: a text field stored encrypted (Fernet) with the keys of FIELD_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts (MultiFernet), so a new key goes first and the old ones stay
listed until `manage.py rotate_encryption_key` has re-encrypted every value. Without keys, one is
derived from SECRET_KEY (a system check warns about it when DEBUG is off): the database alone then
still holds no secret in clear, but whoever reads the settings reads the secrets too.

A stored value is `fernet:` followed by the token. A value without that prefix is a clear value
written before encryption existed: it reads as it is, and the migrations that added this field
encrypt every such value.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


class UndecryptableSecret(ImproperlyConfigured):
    """A stored secret that none of FIELD_ENCRYPTION_KEYS opens: a key was removed or changed too early."""


@lru_cache(maxsize=4)
def derived_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, used when FIELD_ENCRYPTION_KEYS is not set."""
    digest = hashlib.sha256(b"aistatus field encryption\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in getattr(settings, "FIELD_ENCRYPTION_KEYS", []) if k.strip())
    return keys or (derived_key(settings.SECRET_KEY),)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 bytes, url-safe base64; "
            'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())").'
        ) from exc


def encrypt(value: str) -> str:
    return PREFIX + _fernet(configured_keys()).encrypt(value.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # a clear value from before encryption: the field's migration encrypts it
    return _decrypted(configured_keys(), stored)


# Collectors read the same stored keys on every claim of due probes: each token is opened once.
@lru_cache(maxsize=4096)
def _decrypted(keys: tuple[str, ...], stored: str) -> str:
    try:
        return _fernet(keys).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise UndecryptableSecret(
            "A stored secret cannot be decrypted with any key of FIELD_ENCRYPTION_KEYS (or the key derived "
            "from SECRET_KEY when it is unset). Put the key it was encrypted with back in the list."
        ) from exc


class EncryptedTextField(models.TextField):
    """Text kept encrypted in the database and clear in Python. Empty stays empty (nothing to hide).

    Encryption is randomised, so the stored value cannot be searched: filter on it only for emptiness.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) stored by EncryptedTextField, across the installed apps."""
    from django.apps import apps

    return [
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


def reencrypt(model: type[models.Model], field: str) -> tuple[int, int]:
    """Write every non-empty value of model.field again, encrypted with the first key.

    Returns (values written, of which were stored in clear). Used by the migrations that introduced
    encryption (with their historical models) and by `manage.py rotate_encryption_key`.
    """
    from django.db import transaction
    from django.db.models.functions import Cast

    written = clear = 0
    rows = (
        model._default_manager.exclude(**{field: ""})
        .exclude(**{f"{field}__isnull": True})
        .annotate(_stored=Cast(field, models.TextField()))
        .values_list("pk", field, "_stored")
    )
    with transaction.atomic():
        for pk, value, stored in rows.iterator():
            model._default_manager.filter(pk=pk).update(**{field: value})
            written += 1
            clear += not stored.startswith(PREFIX)
    return written, clear
