"""What the audit trail records, and the one way it records it.

Changes to the operated models are read from model signals: the row before (pre_save), after
(post_save) or gone (post_delete), and many-to-many links before and after. They are recorded when
an operator is acting (monitoring.acting: a signed-in user's request, or a command that names its
operator), so the collectors' and agents' own writes are not operator actions. Manual statuses come
from the core's statuses_changed signal (statuses are written in bulk, which model signals do not
see); sign-ins from Django's user_logged_in and user_login_failed, whatever guards the login form.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid

from django.apps import apps
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from accounts.signals import two_factor_refused
from audit.models import AuditEntry
from monitoring.acting import Actor, current_actor
from monitoring.client_address import request_address
from monitoring.models import StatusChange
from monitoring.signals import statuses_changed

MASK = "••••"
# Model label -> how a target is named ("model openai/gpt-4o").
TRACKED = {
    "monitoring.Provider": "provider",
    "monitoring.Credential": "credential",
    "monitoring.AIModel": "model",
    "monitoring.Incident": "incident",
    "monitoring.IncidentUpdate": "incident update",
    "monitoring.Maintenance": "maintenance",
    "alerts.Channel": "alert channel",
    "collectors.Agent": "agent",
    "collectors.CollectorToken": "collector token",
    "collectors.CredentialShare": "credential share",
    "subscriptions.Subscriber": "subscriber",
    "auth.User": "user",
    "auth.Group": "group",
    "authtoken.Token": "API token",
    "authtoken.TokenProxy": "API token",  # the admin's view of tokens: its saves are signalled under this class
    "otp_totp.TOTPDevice": "TOTP device",
    "otp_static.StaticDevice": "recovery codes",
    "django_otp_webauthn.WebAuthnCredential": "passkey",
}
# Whoever creates or removes these, it is recorded (a token made by `manage.py drf_create_token` too).
ALWAYS_RECORDED = {"authtoken.Token", "authtoken.TokenProxy"}
# Bookkeeping the system writes as it goes (a sign-in, a probe, a code used): not an operator's change.
IGNORED_FIELDS = {
    "updated_at",
    "created_at",
    "last_login",
    "last_seen_at",
    "last_used_at",
    "last_t",
    "drift",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "consecutive_failures",
    "sign_count",
    "backup_state",
}
_SECRET = re.compile(r"api_key|secret|token|password|(^|_)key$", re.IGNORECASE)


def is_secret(field_name: str) -> bool:
    # An environment variable's name says where a secret is, not what it is.
    return bool(_SECRET.search(field_name)) and not field_name.endswith("_env")


def record(
    action: str,
    target: str,
    changes: dict | None = None,
    *,
    actor: Actor | None = None,
    user=None,
    name: str = "",
    address: str | None = None,
) -> AuditEntry:
    """Write one entry; who and from where default to the operator acting now."""
    actor = actor or current_actor()
    if actor is not None:
        user = user or actor.user
        name = name or actor.username
        address = address or actor.address
    if user is not None and not name:
        name = user.get_username()
    return AuditEntry.objects.create(
        actor=user, actor_name=name[:150], action=action, target=target[:300], address=address, changes=changes or {}
    )


def _operator_acting(sender) -> bool:
    if sender._meta.label in ALWAYS_RECORDED:
        return True
    actor = current_actor()
    return actor is not None and actor.is_operator


def _is_token(sender) -> bool:
    return sender._meta.app_label == "authtoken"


def _plain(value):
    """A field's value as JSON can hold it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | datetime.timedelta):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _fields(instance: models.Model) -> dict:
    return {
        field.attname: field.value_from_object(instance)
        for field in instance._meta.concrete_fields
        if field.attname not in IGNORED_FIELDS
    }


def _shown(name: str, value):
    if is_secret(name):
        return MASK if value not in (None, "") else value
    return _plain(value)


def _diff(before: dict, after: dict) -> dict:
    return {
        name: [_shown(name, before.get(name)), _shown(name, after.get(name))]
        for name in after.keys() | before.keys()
        if before.get(name) != after.get(name)
    }


def target_of(instance: models.Model) -> str:
    noun = TRACKED[instance._meta.label]
    if _is_token(type(instance)):
        return f"{noun} of {instance.user.get_username()}"
    if hasattr(instance, "user_id") and "otp_" in instance._meta.app_label:
        return f"{noun} {instance.name} of {instance.user.get_username()}"
    return f"{noun} {instance}"


def _before_save(sender, instance: models.Model, raw: bool = False, **kwargs) -> None:
    if raw or not _operator_acting(sender):
        return
    old = sender._base_manager.filter(pk=instance.pk).first() if instance.pk is not None else None
    instance._audit_before = _fields(old) if old is not None else None


def _after_save(sender, instance: models.Model, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not _operator_acting(sender):
        return
    before = getattr(instance, "_audit_before", None)
    instance._audit_before = None
    if created or before is None:
        after = {name: value for name, value in _fields(instance).items() if value not in (None, "", [], {})}
        action = AuditEntry.Action.TOKEN_CREATED if _is_token(sender) else AuditEntry.Action.CREATED
        record(action, target_of(instance), _diff({}, after))
        return
    changes = _diff(before, _fields(instance))
    if changes:
        record(AuditEntry.Action.CHANGED, target_of(instance), changes)


def _after_delete(sender, instance: models.Model, **kwargs) -> None:
    if not _operator_acting(sender):
        return
    before = {name: value for name, value in _fields(instance).items() if value not in (None, "", [], {})}
    action = AuditEntry.Action.TOKEN_REVOKED if _is_token(sender) else AuditEntry.Action.DELETED
    record(action, target_of(instance), _diff(before, {}))


def _m2m_field(instance: models.Model, through) -> str | None:
    for field in instance._meta.many_to_many:
        if field.remote_field.through is through:
            return field.name
    return None


def _links_changed(sender, instance, action: str, reverse: bool, **kwargs) -> None:
    # Links changed from their far side (group.user_set.add) are not followed: the admin and the API
    # change them from the tracked model's side.
    if reverse or instance._meta.label not in TRACKED or not _operator_acting(type(instance)):
        return
    name = _m2m_field(instance, sender)
    if name is None:
        return
    current = sorted(str(obj) for obj in getattr(instance, name).all())
    pending = instance.__dict__.setdefault("_audit_links_before", {})
    if action.startswith("pre_"):
        pending.setdefault(name, current)
    elif action.startswith("post_") and name in pending:
        before = pending.pop(name)
        if before != current:
            record(AuditEntry.Action.CHANGED, target_of(instance), {name: [before, current]})


def _statuses_changed(sender, changes: list[StatusChange], **kwargs) -> None:
    for change in changes:
        if change.source != StatusChange.Source.OPERATOR:
            continue
        record(
            AuditEntry.Action.STATUS_SET,
            f"{TRACKED['monitoring.AIModel']} {change.model.public_slug}",
            {
                "status": [change.from_status, change.to_status],
                "manual": [None, change.manual],
                "reason": [None, change.reason],
            },
        )


def _address(request) -> str | None:
    return request_address(request) or None if request is not None else None


def _signed_in(sender, request, user, **kwargs) -> None:
    record(AuditEntry.Action.SIGNED_IN, f"user {user.get_username()}", user=user, address=_address(request))


def _sign_in_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    # The name tried, never the password, nor whether such a user exists.
    attempted = str(credentials.get("username", ""))
    record(AuditEntry.Action.SIGN_IN_FAILED, f"user {attempted}", name=attempted, address=_address(request))


def _two_factor_refused(sender, request, user, reason: str, **kwargs) -> None:
    record(
        AuditEntry.Action.TWO_FACTOR_FAILED,
        f"user {user.get_username()}",
        {"reason": [None, reason]},
        user=user,
        address=_address(request),
    )


def connect() -> None:
    for label in TRACKED:
        model = apps.get_model(label)
        uid = f"audit.{label}"
        pre_save.connect(_before_save, sender=model, dispatch_uid=f"{uid}.pre_save")
        post_save.connect(_after_save, sender=model, dispatch_uid=f"{uid}.post_save")
        post_delete.connect(_after_delete, sender=model, dispatch_uid=f"{uid}.post_delete")
        for field in model._meta.many_to_many:
            m2m_changed.connect(_links_changed, sender=field.remote_field.through, dispatch_uid=f"{uid}.{field.name}")
    statuses_changed.connect(_statuses_changed, dispatch_uid="audit.statuses_changed")
    user_logged_in.connect(_signed_in, dispatch_uid="audit.signed_in")
    user_login_failed.connect(_sign_in_failed, dispatch_uid="audit.sign_in_failed")
    two_factor_refused.connect(_two_factor_refused, dispatch_uid="audit.two_factor_refused")
