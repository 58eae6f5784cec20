"""The admin: subscribers (paused ones flagged), counts per target, and exporting or erasing one subscriber."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from monitoring.models import AIModel, Provider
from subscriptions.models import Announcement, Subscriber


class PausedFilter(admin.SimpleListFilter):
    title = _("paused")
    parameter_name = "paused"

    def lookups(self, request, model_admin):
        return [("yes", _("Paused")), ("no", _("Not paused"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(paused_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(paused_at__isnull=True)
        return queryset


def subscriber_export(subscriber: Subscriber) -> dict:
    """Everything stored about one subscriber (a data subject's copy)."""
    return {
        "email": subscriber.email,
        "language": subscriber.language,
        "follows": subscriber.follows(),
        "requested_at": subscriber.requested_at,
        "confirmed_at": subscriber.confirmed_at,
        "paused_at": subscriber.paused_at,
        "paused_reason": subscriber.paused_reason,
        "created_at": subscriber.created_at,
        "messages": [
            {"kind": m.kind, "state": m.state, "created_at": m.created_at, "sent_at": m.sent_at}
            for m in subscriber.messages.order_by("id")
        ],
    }


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "language", "whole_page", "confirmed_at", "paused_at", "paused_reason"]
    list_filter = [PausedFilter, "language", "whole_page", ("confirmed_at", admin.EmptyFieldListFilter)]
    search_fields = ["email"]
    readonly_fields = ["requested_at", "confirmed_at", "consecutive_failures", "paused_at", "paused_reason"]
    filter_horizontal = ["providers", "ai_models"]
    actions = ["export_subscriber", "resume", "erase"]
    change_list_template = "admin/subscriptions/subscriber/change_list.html"

    def get_urls(self):
        counts = path("counts/", self.admin_site.admin_view(self.counts_view), name="subscriptions_subscriber_counts")
        return [counts, *super().get_urls()]

    def counts_view(self, request: HttpRequest) -> HttpResponse:
        active = Q(subscribers__confirmed_at__isnull=False, subscribers__paused_at__isnull=True)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Subscribers per target"),
            "whole_page": Subscriber.objects.filter(
                whole_page=True, confirmed_at__isnull=False, paused_at__isnull=True
            ).count(),
            "providers": Provider.objects.annotate(n=Count("subscribers", filter=active)).order_by("-n", "name"),
            "models": AIModel.objects.select_related("provider")
            .annotate(n=Count("subscribers", filter=active))
            .filter(n__gt=0)
            .order_by("-n", "name"),
            "unconfirmed": Subscriber.objects.filter(confirmed_at__isnull=True).count(),
            "paused": Subscriber.objects.filter(paused_at__isnull=False).count(),
        }
        return TemplateResponse(request, "admin/subscriptions/subscriber/counts.html", context)

    @admin.action(description=_("Export the selected subscriber (JSON)"))
    def export_subscriber(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one subscriber to export."), messages.WARNING)
            return None
        subscriber = queryset.get()
        body = json.dumps(subscriber_export(subscriber), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="subscriber-{subscriber.pk}.json"'
        return response

    @admin.action(description=_("Resume the selected paused subscriptions"))
    def resume(self, request, queryset):
        done = queryset.filter(paused_at__isnull=False).update(paused_at=None, paused_reason="", consecutive_failures=0)
        self.message_user(request, _("%(n)d resumed.") % {"n": done})

    @admin.action(description=_("Erase the selected subscribers (address and history)"))
    def erase(self, request, queryset):
        done = queryset.count()
        queryset.delete()
        self.message_user(request, _("%(n)d erased.") % {"n": done})


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    list_display = ["key", "kind", "recipients", "created_at"]
    list_filter = ["kind"]
    readonly_fields = ["key", "kind", "payload", "recipients", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
