"""The roles: Django groups named viewer, operator and admin, each a set of permissions the admin and the API check.

A user's role is the group they are in. The sets are defined here and applied by the accounts migration
and again after every `migrate` (so permissions of models added later join their role); a change made
to these groups by hand is undone by the next `migrate`.
"""

from __future__ import annotations

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

# The apps whose models the roles read (viewer) and administer (admin).
OPERATED_APPS = ("monitoring", "collectors", "alerts", "subscriptions")
# What an operator may change beyond reading: a model's status (the status row), incidents and their
# updates, maintenance windows, visitors' subscriptions.
OPERATOR_SETS_STATUS = "change_modelstatus"
OPERATOR_MODELS = {"monitoring": ("incident", "incidentupdate", "maintenance"), "subscriptions": ("subscriber",)}
# Users, their API tokens and two-factor devices: the admin role's, with the registry.
ADMIN_ONLY_APPS = ("auth", "authtoken", "otp_totp", "otp_static", "django_otp_webauthn")


def _role_permissions(role: str, Permission) -> list:
    viewer = Permission.objects.filter(content_type__app_label__in=OPERATED_APPS, codename__startswith="view_")
    if role == VIEWER:
        return list(viewer)
    operator = list(viewer) + list(
        Permission.objects.filter(content_type__app_label="monitoring", codename=OPERATOR_SETS_STATUS)
    )
    for app_label, models in OPERATOR_MODELS.items():
        operator += list(Permission.objects.filter(content_type__app_label=app_label, content_type__model__in=models))
    if role == OPERATOR:
        return operator
    everything = Permission.objects.filter(content_type__app_label__in=OPERATED_APPS + ADMIN_ONLY_APPS)
    # The audit trail is read, never written, by anyone (its admin refuses add, change and delete).
    audit = Permission.objects.filter(content_type__app_label="audit", codename="view_auditentry")
    return [*operator, *everything, *audit]


def apply_roles(Group, Permission) -> None:
    """Create the three groups and give each its permissions (models passed in, so a migration can call it)."""
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set({p.pk for p in _role_permissions(role, Permission)})
