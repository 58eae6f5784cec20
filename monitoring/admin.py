"""The operator's registry: providers, models and credentials; statuses shown read-only and set by a recorded action."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from monitoring.dates import format_moment
from monitoring.durations import format_duration
from monitoring.models import (
    AIModel,
    Credential,
    Incident,
    IncidentUpdate,
    Maintenance,
    ModelStatus,
    Provider,
    StatusChange,
)
from monitoring.status import Status, status_label
from monitoring.transitions import record_status


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "display_order", "model_count"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description=_("models"))
    def model_count(self, obj: Provider) -> int:
        return obj.models.count()


class CredentialForm(forms.ModelForm):
    # Write-only: the stored key is never sent back to the browser.
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Write-only. Leave empty to keep the current key."),
    )

    class Meta:
        model = Credential
        fields = ["name", "api_key", "api_key_env"]

    def clean_api_key(self) -> str:
        return self.cleaned_data["api_key"] or (self.instance.api_key if self.instance.pk else "")


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ["name", "masked_key"]
    search_fields = ["name"]

    @admin.display(description=_("key"))
    def masked_key(self, obj: Credential) -> str:
        return obj.masked


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=True)
    release = forms.BooleanField(
        required=False,
        label=_("Return control to the collectors"),
        help_text=_("Clears the manual status: the next probe result decides."),
    )


def _set_enabled(queryset: QuerySet[AIModel], enabled: bool) -> int:
    # Saved one by one rather than by one UPDATE: each change is then seen (the audit trail records it).
    count = 0
    for obj in queryset:
        obj.enabled = enabled
        obj.save(update_fields=["enabled"])
        count += 1
    return count


def _set_by_text(row: ModelStatus) -> str:
    if row.set_by:
        return gettext("manual, set by %(user)s") % {"user": row.set_by}
    return gettext("manual")


def _status_badge(status: str) -> str:
    return format_html('<span class="status status-{}">{}</span>', status, status_label(status))


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    fields = ["id", "at", "from_status", "to_status", "source", "manual", "reason"]
    readonly_fields = fields
    ordering = ["-id"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = _("recent status changes")

    def get_queryset(self, request):
        # A model that flaps for months has a long history; the detail page shows the latest.
        queryset = super().get_queryset(request)
        return queryset.order_by("-id")


class QuickActionCheckbox:
    """The change list's row checkbox written directly: Django renders a form widget template for each row,
    most of the time a page of 100 models takes."""

    def action_checkbox(self, obj) -> str:
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            label,
        )


@admin.register(AIModel)
class AIModelAdmin(QuickActionCheckbox, admin.ModelAdmin):
    list_display = [
        "name",
        "provider",
        "kind",
        # The probe kind is a filter and on each model's page: as a column its long names pushed
        # "last checked", "enabled" and "public" out of view at 1280 px.
        "shown_status",
        "last_checked_ago",
        "enabled",
        "public",
    ]
    list_filter = ["provider", "kind", "probe_kind", "status_row__status", "enabled", "public"]
    list_select_related = ["provider", "status_row"]
    search_fields = ["name", "slug", "provider__name", "provider__slug", "upstream_model"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["shown_status", "status_since", "last_checked", "status_message"]
    actions = ["enable_models", "disable_models", "set_status"]
    inlines = [StatusChangeInline]
    fieldsets = [
        (None, {"fields": ["provider", "name", "slug", "description", "kind", "public", "enabled", "display_order"]}),
        (_("Status (read-only; use the “Set status” action)"), {"fields": readonly_fields}),
        (
            _("Probe"),
            {
                "fields": [
                    "probe_kind",
                    "endpoint",
                    "upstream_model",
                    "credential",
                    "probe_config",
                    "interval_seconds",
                    "timeout_seconds",
                ]
            },
        ),
        (
            _("Thresholds"),
            {
                "fields": [
                    "latency_threshold_ms",
                    "ttft_threshold_ms",
                    "failures_to_confirm",
                    "successes_to_recover",
                    "anomaly_degrades",
                ]
            },
        ),
        (_("Service level objectives"), {"fields": ["slo_availability_percent", "slo_ttft_ms"]}),
    ]

    @admin.display(description=_("status"), ordering="status_row__status")
    def shown_status(self, obj: AIModel) -> str:
        row = obj.status_row
        suffix = format_html(" <small>({})</small>", _set_by_text(row)) if row.manual else ""
        return format_html("{}{}", _status_badge(obj.shown_status()), suffix)

    @admin.display(description=_("since"))
    def status_since(self, obj: AIModel):
        return obj.status_row.since

    @admin.display(description=_("last checked"), ordering="status_row__last_checked_at")
    def last_checked(self, obj: AIModel):
        return obj.status_row.last_checked_at

    @admin.display(description=_("last checked"), ordering="status_row__last_checked_at")
    def last_checked_ago(self, obj: AIModel) -> str:
        # Short enough for the list at any width ("12 seconds ago"); the moment itself on hover.
        checked = obj.status_row.last_checked_at
        if checked is None:
            return gettext("never")
        ago = gettext("%(time)s ago") % {"time": format_duration((timezone.now() - checked).total_seconds())}
        return format_html('<time datetime="{}" title="{}">{}</time>', checked.isoformat(), format_moment(checked), ago)

    @admin.display(description=_("message"))
    def status_message(self, obj: AIModel) -> str:
        return obj.status_row.message

    def has_set_status_permission(self, request: HttpRequest) -> bool:
        # Setting a status is the operator's right: changing the status row, not the model.
        return request.user.has_perm("monitoring.change_modelstatus")

    @admin.action(description=_("Enable probing of the selected models"), permissions=["change"])
    def enable_models(self, request: HttpRequest, queryset: QuerySet[AIModel]) -> None:
        count = _set_enabled(queryset, True)
        self.message_user(request, _("%(count)d model(s) enabled.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Disable probing of the selected models"), permissions=["change"])
    def disable_models(self, request: HttpRequest, queryset: QuerySet[AIModel]) -> None:
        count = _set_enabled(queryset, False)
        self.message_user(request, _("%(count)d model(s) disabled.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Set status of the selected models…"), permissions=["set_status"])
    def set_status(self, request: HttpRequest, queryset: QuerySet[AIModel]) -> HttpResponse | None:
        form = StatusForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            status, reason = form.cleaned_data["status"], form.cleaned_data["reason"]
            manual = not form.cleaned_data["release"]
            # The reason is public; the operator's name is kept on the status row and in the audit trail.
            by = request.user.get_username()
            for obj in queryset:
                record_status(
                    obj.pk,
                    status,
                    reason=reason,
                    source=StatusChange.Source.OPERATOR,
                    manual=manual,
                    set_by=by,
                )
            self.message_user(
                request,
                _("%(count)d model(s) set to %(status)s.")
                % {"count": queryset.count(), "status": status_label(status)},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Set status"),
            "form": form,
            "models": queryset,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/monitoring/set_status.html", context)


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    list_display = ["id", "at", "model", "from_status", "to_status", "source", "manual", "reason"]
    list_filter = ["to_status", "source", "manual", "model__provider"]
    search_fields = ["model__name", "model__slug", "reason"]
    list_select_related = ["model__provider"]
    date_hierarchy = "at"

    # The event log is append-only: it is what alerts and live updates replay.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ModelStatus)
class ModelStatusAdmin(admin.ModelAdmin):
    list_display = ["model", "status", "since", "last_checked_at", "manual", "set_by"]
    list_filter = ["status", "manual"]
    list_select_related = ["model__provider"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class IncidentUpdateInline(admin.StackedInline):
    model = IncidentUpdate
    fields = ["state", "body", "at"]
    extra = 1
    ordering = ["at", "id"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Incidents with Statuspage's lifecycle: post an update to move one along (its state becomes the incident's)."""

    list_display = ["title", "state", "impact", "provider", "automatic", "started_at", "resolved_at"]
    list_filter = ["state", "impact", "automatic", "provider"]
    search_fields = ["title", "updates__body"]
    filter_horizontal = ["models_affected"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("models_affected__provider")

    readonly_fields = ["state", "resolved_at", "automatic", "created_at", "updated_at"]
    fields = ["title", "impact", "provider", "models_affected", "started_at", *readonly_fields]
    inlines = [IncidentUpdateInline]
    date_hierarchy = "started_at"

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        incident: Incident = form.instance
        if not incident.updates.exists():
            incident.add_update(Incident.State.INVESTIGATING, incident.title, at=incident.started_at)
        else:
            incident.follow_updates()


@admin.register(Maintenance)
class MaintenanceAdmin(admin.ModelAdmin):
    list_display = ["title", "target", "starts_at", "ends_at", "recurrence", "duration_minutes", "next_window"]
    list_filter = ["provider"]
    search_fields = ["title", "description"]
    list_select_related = ["provider", "model__provider"]
    filter_horizontal = ["models_affected"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("models_affected__provider")

    fieldsets = [
        (None, {"fields": ["title", "description", "provider", "model", "models_affected"]}),
        (_("When"), {"fields": ["starts_at", "ends_at", "recurrence", "duration_minutes", "time_zone"]}),
    ]

    @admin.display(description=_("target"))
    def target(self, obj: Maintenance) -> str:
        named = [str(m) for m in obj.target_models()]
        return ", ".join(named) if named else str(obj.provider)

    @admin.display(description=_("next window"))
    def next_window(self, obj: Maintenance) -> str:
        now = timezone.now()
        found = obj.occurrences(now, now + timedelta(days=366))[:1]
        return f"{found[0].starts_at:%Y-%m-%d %H:%M} – {found[0].ends_at:%Y-%m-%d %H:%M} UTC" if found else "—"
