"""Who may do what through the API: every permission check of the REST API lives here.

Roles (viewer, operator, admin) will map onto these; until then an active staff user holds all of them.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission


def can_operate(user) -> bool:
    """Set statuses, write incidents and maintenance windows (the operator role and up)."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def can_administer(user) -> bool:
    """Change the registry: models and providers (the admin role)."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def sees_everything(user) -> bool:
    """Reads private models and operational wiring."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class StaffWritesOnly(BasePermission):
    """Anyone reads; only administrators write (the registry)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_administer(request.user)


class OperatorsOnly(BasePermission):
    """Reads and writes for operators: incidents and maintenance windows, private models included."""

    def has_permission(self, request, view) -> bool:
        return can_operate(request.user)


class AnyoneReadsOperatorsWrite(BasePermission):
    """Anyone reads (public data only, see the view); operators write (a model's status)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_operate(request.user)
