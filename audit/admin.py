"""The audit trail in the admin: read-only for everyone (superusers too), exported as CSV or JSON."""

from __future__ import annotations

import csv
import json

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.api import AuditEntrySerializer
from audit.models import AuditEntry

EXPORT_FIELDS = ["id", "at", "actor", "action", "target", "address", "changes"]


def as_document(entry: AuditEntry) -> dict:
    """One entry as the API gives it."""
    return AuditEntrySerializer(entry).data


def _filename(extension: str) -> str:
    return f"audit-{timezone.now():%Y%m%d-%H%M%S}.{extension}"


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "target", "address"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target", "address"]
    date_hierarchy = "at"
    fields = ["at", "actor", "actor_name", "action", "target", "address", "changes"]
    readonly_fields = fields
    actions = ["export_csv", "export_json"]

    # Nobody edits history: no add, change or delete, whatever their role.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description=_("Export the selected entries as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{_filename("csv")}"'
        writer = csv.DictWriter(response, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        for entry in queryset.order_by("-id").iterator():
            document = as_document(entry)
            writer.writerow({**document, "changes": json.dumps(document["changes"], ensure_ascii=False)})
        return response

    @admin.action(description=_("Export the selected entries as JSON"))
    def export_json(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> HttpResponse:
        documents = [as_document(entry) for entry in queryset.order_by("-id").iterator()]
        response = HttpResponse(json.dumps(documents, ensure_ascii=False, indent=1), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{_filename("json")}"'
        return response
