"""Alert channels in the admin (write-only secrets, a test action, failing channels flagged) and the delivery log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from alerts.delivery import send_test
from alerts.models import Channel, DeliveryAttempt, Notification
from alerts.transports.webhook import new_secret
from monitoring.models import ModelKind

# The URL of these kinds is itself a credential.
SECRET_URL_KINDS = {Channel.Kind.SLACK, Channel.Kind.APPRISE}


class ChannelForm(forms.ModelForm):
    url = forms.CharField(widget=forms.TextInput(attrs={"size": 80}), required=False)
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Webhooks: a whsec_… secret. Write-only; leave empty to keep the current one (or to get one)."),
    )
    events = forms.MultipleChoiceField(
        choices=Channel.Event.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    model_kinds = forms.MultipleChoiceField(
        choices=ModelKind.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Empty covers every kind."),
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "kind",
            "url",
            "secret",
            "language",
            "enabled",
            "events",
            "providers",
            "ai_models",
            "model_kinds",
            "min_duration_seconds",
            "silence_during_maintenance",
            "remind_every_minutes",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk and instance.kind in SECRET_URL_KINDS:
            # Write-only: the stored URL (it carries a token) is never sent back to the browser.
            self.initial["url"] = ""
            self.fields["url"].help_text = _("Stored: %(url)s. Write-only; leave empty to keep it.") % {
                "url": instance.shown_url
            }
        elif not instance.pk:
            self.initial.setdefault("events", Channel._meta.get_field("events").get_default())

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if not url and self.instance.pk:
            return self.instance.url
        if not url:
            raise forms.ValidationError(_("This field is required."))
        return url

    def clean_secret(self) -> str:
        return self.cleaned_data["secret"].strip() or (self.instance.secret if self.instance.pk else "")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "language", "health", "consecutive_failures", "last_sent"]
    list_filter = ["kind", "enabled", "language"]
    search_fields = ["name"]
    filter_horizontal = ["providers", "ai_models"]
    readonly_fields = ["shown_url", "consecutive_failures", "disabled_reason", "disabled_at", "created_at"]
    actions = ["send_test_message", "enable_channels"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "url", "secret", "language", "enabled"]}),
        (
            _("Rule"),
            {
                "fields": [
                    "events",
                    "providers",
                    "ai_models",
                    "model_kinds",
                    "min_duration_seconds",
                    "silence_during_maintenance",
                    "remind_every_minutes",
                ],
                "description": _(
                    "A model is covered when it is listed, or when it passes the provider and kind filters "
                    "that are set; with no filter at all, every model is covered."
                ),
            },
        ),
        (_("Health"), {"fields": readonly_fields}),
    ]

    @admin.display(description=_("health"), ordering="enabled")
    def health(self, obj: Channel):
        if obj.enabled:
            return format_html('<span style="color:#1a7f37">{}</span>', _("enabled"))
        if obj.disabled_reason:
            return format_html(
                '<strong style="color:#cf222e" title="{}">⚠ {}</strong>', obj.disabled_reason, _("disabled: failing")
            )
        return _("disabled")

    @admin.display(description=_("last sent"))
    def last_sent(self, obj: Channel):
        latest = obj.notifications.filter(state=Notification.State.SENT).order_by("-sent_at").first()
        return latest.sent_at if latest else None

    def save_model(self, request: HttpRequest, obj: Channel, form, change: bool) -> None:
        generated = obj.kind == Channel.Kind.WEBHOOK and not obj.secret
        if generated:
            obj.secret = new_secret()
        if change and obj.enabled and "enabled" in form.changed_data:
            obj.consecutive_failures, obj.disabled_reason, obj.disabled_at = 0, "", None
            obj.alert_states.all().delete()
        super().save_model(request, obj, form, change)
        if generated:
            self.message_user(
                request,
                _("The signing secret of %(name)s is %(secret)s. Keep it now: it is not shown again.")
                % {"name": obj.name, "secret": obj.secret},
                messages.WARNING,
            )

    @admin.action(description=_("Send a test message"))
    def send_test_message(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            outcome = send_test(channel)
            if outcome.ok:
                self.message_user(request, _("%(name)s: test sent.") % {"name": channel.name}, messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    _("%(name)s: the test failed: %(error)s") % {"name": channel.name, "error": outcome.error},
                    messages.ERROR,
                )

    @admin.action(description=_("Enable (and reset the failure count)"))
    def enable_channels(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            channel.enable()
        self.message_user(request, _("%(count)d channel(s) enabled.") % {"count": len(queryset)}, messages.SUCCESS)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "at", "ok", "status_code", "duration_ms", "error", "response"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The delivery log: every notification, its state, and each attempt."""

    list_display = ["id", "created_at", "channel", "kind", "model", "state", "attempts", "next_attempt_at", "error"]
    list_filter = ["state", "kind", "channel"]
    list_select_related = ["channel", "model__provider"]
    search_fields = ["channel__name", "model__name", "message_id", "last_error"]
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]
    readonly_fields = [
        "channel",
        "kind",
        "model",
        "change",
        "incident_update",
        "message_id",
        "dedupe_key",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
        "created_at",
        "payload",
    ]
    fields = readonly_fields

    @admin.display(description=_("last error"))
    def error(self, obj: Notification) -> str:
        return obj.last_error[:120]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description=_("Send again now (failed or cancelled ones)"))
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = queryset.filter(state__in=[Notification.State.FAILED, Notification.State.CANCELLED]).update(
            state=Notification.State.PENDING, attempts=0, next_attempt_at=timezone.now(), claimed_until=None
        )
        self.message_user(request, _("%(count)d notification(s) queued again.") % {"count": count}, messages.SUCCESS)
