"""The admin's view of remote agents (health, clock skew, revocation) and of credentials shared with them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from collectors.models import Agent, CredentialShare


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = [
        "name", "region", "active", "last_seen_at", "version", "results_per_s", "spool_depth", "skew", "sent",
        "stored", "dropped", "rejected",
    ]  # fmt: skip
    list_filter = ["region", "active", "clock_skewed"]
    search_fields = ["name", "region"]
    readonly_fields = [
        "created_at", "last_seen_at", "version", "results_per_s", "spool_depth", "spool_dropped", "last_error",
        "clock_skew_s", "clock_skewed", "sent", "stored", "dropped", "rejected", "last_seq",
    ]  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # a token is shown once, by `manage.py create_agent`

    @admin.display(description=_("clock skew"), ordering="clock_skew_s")
    def skew(self, agent: Agent) -> str:
        if agent.clock_skew_s is None:
            return "—"
        text = f"{agent.clock_skew_s:+.1f} s"
        if agent.clock_skewed:
            # Flagged: its results are placed by the site's receive time.
            return format_html('<strong style="color:#b42318">⚠ {}</strong>', text)
        return text

    @admin.action(description=_("Revoke the selected agents' tokens"))
    def revoke(self, request, queryset) -> None:
        count = queryset.update(active=False)
        message = ngettext("%(n)d agent revoked.", "%(n)d agents revoked.", count) % {"n": count}
        self.message_user(request, message, messages.SUCCESS)


@admin.register(CredentialShare)
class CredentialShareAdmin(admin.ModelAdmin):
    list_display = ["credential", "regions"]
