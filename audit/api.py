"""GET /api/v1/audit/: the audit trail for the admin role, newest first, paged by cursor."""

from __future__ import annotations

from rest_framework import generics, serializers

from audit.models import AuditEntry
from monitoring.api.pagination import NewestFirst
from monitoring.api.permissions import AdministratorsRead


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="The user's name, or a command's operator.")
    action = serializers.ChoiceField(choices=AuditEntry.Action.choices)
    changes = serializers.JSONField(help_text='`{field: [before, after]}`; secrets shown as "••••".')

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "target", "address", "changes"]
        read_only_fields = fields


class AuditEntryList(generics.ListAPIView):
    """Every operator action, newest first: manual statuses, edits, tokens, sign-ins (the admin role only)."""

    serializer_class = AuditEntrySerializer
    permission_classes = [AdministratorsRead]
    pagination_class = NewestFirst
    queryset = AuditEntry.objects.all()
    filter_backends: list = []
