"""Who may do what through the API: every permission check of the REST API lives here.

A user's role is the group they are in (viewer, operator, admin; see accounts.roles), and a role is a
set of Django permissions, the same ones the admin checks. So the API asks for permissions, never for
`is_staff`: a staff user in no group may sign in to the admin but reads and writes nothing beyond what
an anonymous visitor may (least privilege). Superusers hold every permission.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

# One permission stands for each right; the roles grant them with the rest of their set.
OPERATE = "monitoring.change_modelstatus"  # set a status (operator and up)
ADMINISTER = "monitoring.add_aimodel"  # change the registry (admin)
SEE_EVERYTHING = "monitoring.view_aimodel"  # private models, operational wiring (viewer and up)


def _has(user, permission: str) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(permission))


def can_operate(user) -> bool:
    """Set statuses, write incidents and maintenance windows (the operator role and up)."""
    return _has(user, OPERATE)


def can_administer(user) -> bool:
    """Change the registry, alert channels and agents, read the audit trail (the admin role)."""
    return _has(user, ADMINISTER)


def sees_everything(user) -> bool:
    """Reads private models and operational wiring (the viewer role and up)."""
    return _has(user, SEE_EVERYTHING)


class StaffWritesOnly(BasePermission):
    """Anyone reads; only administrators write (the registry)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_administer(request.user)


class OperatorsOnly(BasePermission):
    """Operators read and write; viewers read (incidents and maintenance windows, private models included)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return sees_everything(request.user)
        return can_operate(request.user)


class AnyoneReadsOperatorsWrite(BasePermission):
    """Anyone reads (public data only, see the view); operators write (a model's status)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_operate(request.user)


class AdministratorsOnly(BasePermission):
    """Administrators read and write; viewers read (alert channels, agents)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return sees_everything(request.user)
        return can_administer(request.user)


class AdministratorsRead(BasePermission):
    """The admin role only, reads included (the audit trail)."""

    def has_permission(self, request, view) -> bool:
        return can_administer(request.user)
