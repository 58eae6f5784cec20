"""The admin's view of the read replicas: region, state, byte lag, replay age and share of reads, per replica."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from aistatus.replica_monitor import get_monitor


def replicas_view(request: HttpRequest) -> HttpResponse:
    monitor = get_monitor()
    summary = (
        monitor.summary()
        if monitor
        else {
            "region": "",
            "primary": {"state": "up", "down_since": None, "error": "", "read_share": 1.0},
            "replicas": [],
        }
    )
    context = {**admin.site.each_context(request), "summary": summary, "title": _("Database replicas")}
    return TemplateResponse(request, "admin/replicas.html", context)


replicas = admin.site.admin_view(replicas_view)
