"""Alert channels and their rules, what each channel has been told, and the notifications sent to it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from monitoring.fields import EncryptedTextField
from monitoring.models import AIModel, IncidentUpdate, ModelKind, Provider, StatusChange


def default_events() -> list[str]:
    # Every transition into and out of an outage, at once.
    return [Channel.Event.OUTAGE, Channel.Event.RECOVERY]


def default_language() -> str:
    return settings.LANGUAGE_CODE


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class Channel(models.Model):
    """Where alerts go (a Slack or generic webhook, email addresses, an Apprise URL) and which ones go there.

    The rule: a model is covered when it is listed in `ai_models`, or when it passes the provider and
    kind filters that are set; a channel without any filter covers every model.
    """

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", _("Webhook (signed, Standard Webhooks)")
        SLACK = "slack", _("Slack incoming webhook")
        EMAIL = "email", _("Email")
        APPRISE = "apprise", _("Apprise URL (Discord, Teams, Telegram, PagerDuty, ntfy, …)")

    class Event(models.TextChoices):
        OUTAGE = "outage", _("Into partial or major outage")
        DEGRADED = "degraded", _("Into degraded performance")
        RECOVERY = "recovery", _("Recovery")
        # Opt-in: unusual behaviour for the model (an anomaly opened or closed); never a status change.
        ANOMALY = "anomaly", _("Unusual behaviour (anomaly opened or closed)")
        # Opt-in: a model burns its error budget too fast (the multiwindow burn-rate rules); once an episode.
        BURN_RATE = "burn_rate", _("Error budget burning fast (SLO burn-rate alert)")
        INCIDENTS = "incidents", _("Incident updates")

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    url = models.TextField(
        help_text=_(
            "Webhook or Slack: the http(s) URL. Email: mailto: addresses, comma-separated. "
            "Apprise: the service's Apprise URL."
        )
    )
    # Webhook signing secret (whsec_...). Never shown after it is set; encrypted at rest.
    secret = EncryptedTextField(max_length=200, blank=True)
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default=default_language)
    enabled = models.BooleanField(default=True)

    providers = models.ManyToManyField(Provider, blank=True, related_name="alert_channels")
    ai_models = models.ManyToManyField(AIModel, blank=True, related_name="alert_channels", verbose_name=_("models"))
    model_kinds = models.JSONField(default=list, blank=True, help_text=_("Model kinds covered; empty means all."))
    events = models.JSONField(default=default_events, blank=True)
    min_duration_seconds = models.PositiveIntegerField(
        default=0, help_text=_("Alert only when a status has lasted this long; 0 alerts at once.")
    )
    silence_during_maintenance = models.BooleanField(default=True)
    remind_every_minutes = models.PositiveIntegerField(
        default=0, help_text=_("Remind while a model stays down, this often; 0 sends no reminders.")
    )

    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_reason = models.TextField(blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("alert channel")

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Every webhook is signed: one created without a secret (any path) gets one.
        if self.kind == self.Kind.WEBHOOK and not self.secret:
            from alerts.transports.webhook import new_secret

            self.secret = new_secret()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "secret"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from alerts.transports import InvalidDestination, transport_for

        errors: dict[str, object] = {}
        try:
            transport_for(self.kind).validate(self.url)
        except InvalidDestination as exc:
            errors["url"] = str(exc)
        except KeyError:
            errors["kind"] = _("Unknown kind.")
        if self.secret:
            from alerts.transports.webhook import InvalidSecret, check_secret

            try:
                check_secret(self.secret)
            except InvalidSecret as exc:
                errors["secret"] = str(exc)
        if not isinstance(self.events, list) or not set(self.events) <= set(self.Event.values):
            errors["events"] = _("Choose among: %(choices)s.") % {"choices": ", ".join(self.Event.values)}
        if not isinstance(self.model_kinds, list) or not set(self.model_kinds) <= set(ModelKind.values):
            errors["model_kinds"] = _("Choose among: %(choices)s.") % {"choices": ", ".join(ModelKind.values)}
        if errors:
            raise ValidationError(errors)

    @property
    def shown_url(self) -> str:
        """The URL as it may be displayed: Slack and Apprise URLs carry tokens and are masked."""
        from alerts.transports import KINDS, transport_for

        if not self.url or self.kind not in KINDS:
            return ""
        return transport_for(self.kind).mask(self.url)

    def disable(self, reason: str, now=None) -> bool:
        """Turn the channel off (once) and drop what it still had to send."""
        now = now or timezone.now()
        done = Channel.objects.filter(pk=self.pk, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=now
        )
        if done:
            self.notifications.filter(state=Notification.State.PENDING).update(
                state=Notification.State.CANCELLED, last_error=reason, claimed_by="", claimed_until=None
            )
        return bool(done)

    def enable(self) -> None:
        """Turn the channel back on with a clean slate: what it was told before may no longer be true."""
        self.enabled, self.consecutive_failures, self.disabled_reason, self.disabled_at = True, 0, "", None
        self.save(update_fields=["enabled", "consecutive_failures", "disabled_reason", "disabled_at"])
        self.alert_states.all().delete()


class AlertState(models.Model):
    """What one channel has been told about one model, kept so that nobody is alerted twice."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="alert_states")
    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="+")
    # The bad status the channel was last alerted about; empty when it believes the model is fine.
    notified_status = models.CharField(max_length=30, blank=True)
    down_since = models.DateTimeField(null=True, blank=True)
    # A transition waiting for the channel's minimum duration.
    pending_change = models.ForeignKey(StatusChange, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    pending_due_at = models.DateTimeField(null=True, blank=True)
    flapping_since = models.DateTimeField(null=True, blank=True)
    next_reminder_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "model"], name="one_alert_state_per_channel_model")]

    def __str__(self) -> str:
        return f"{self.channel_id}/{self.model_id}: {self.notified_status or 'ok'}"


class EventCursor(models.Model):
    """The last StatusChange id a consumer has processed (StatusChange ids commit in order)."""

    name = models.CharField(max_length=50, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_id}"


class Outbox(models.Model):
    """A message waiting to be sent, with what delivery needs: state, attempts, a lease, a stable id.

    Alerts' notifications and visitors' subscription messages both build on it, so that one
    delivery machinery (alerts.delivery) claims, retries and settles either.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Given up")
        CANCELLED = "cancelled", _("Cancelled")

    # Sent to receivers (the webhook-id header, the Message-ID): the same on every retry.
    message_id = models.CharField(max_length=40, unique=True, default=new_message_id, editable=False)

    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=40, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        abstract = True


class Notification(Outbox):
    """One message for one channel. Workers claim it with one conditional update, send it, retry it."""

    class Kind(models.TextChoices):
        ALERT = "alert", _("Alert")
        RECOVERY = "recovery", _("Recovery")
        REMINDER = "reminder", _("Reminder")
        FLAPPING = "flapping", _("Flapping")
        SETTLED = "settled", _("Stable again")
        INCIDENT = "incident", _("Incident update")
        ANOMALY = "anomaly", _("Anomaly")
        BURN_RATE = "burn_rate", _("Burn-rate alert")
        TEST = "test", _("Test")

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    model = models.ForeignKey(AIModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    change = models.ForeignKey(StatusChange, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    incident_update = models.ForeignKey(
        IncidentUpdate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What happened, independent of language; rendered in the channel's language when sent.
    payload = models.JSONField(default=dict)
    # One notification per event and channel, however often the event is processed.
    dedupe_key = models.CharField(max_length=200)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["channel", "dedupe_key"], name="one_notification_per_event")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} to {self.channel_id}"


class DeliveryAttempt(models.Model):
    """One try at sending a notification: the delivery log."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField()
    error = models.TextField(blank=True)
    response = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.notification_id} #{self.number}: {'ok' if self.ok else self.error[:40]}"
