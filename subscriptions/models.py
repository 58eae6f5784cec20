"""Subscribers, what happened that they may want to know (announcements), and the messages sent to them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alerts.models import Outbox
from monitoring.fields import EncryptedTextField
from monitoring.models import AIModel, Provider


def new_key() -> str:
    return secrets.token_urlsafe(16)


def default_language() -> str:
    return settings.LANGUAGE_CODE


class Subscriber(models.Model):
    """One visitor's address and what it follows: the whole page, some providers or some models.

    Active once confirmed (double opt-in). The row is deleted on unsubscribing, with its messages.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        WEBHOOK = "webhook", _("Webhook")
        PUSH = "push", _("Web Push")

    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    # Stored lowercased; never shown on a public page or API.
    email = models.EmailField(max_length=254, unique=True, null=True, blank=True)
    # A webhook subscriber's endpoint and its signing secret (handed to the endpoint in the challenge).
    webhook_url = models.URLField(max_length=2000, unique=True, null=True, blank=True)
    secret = EncryptedTextField(max_length=200, blank=True, editable=False)  # encrypted at rest
    # A browser's push subscription: the push service's endpoint and the keys payloads are encrypted to.
    push_endpoint = models.URLField(max_length=2000, unique=True, null=True, blank=True)
    push_keys = models.JSONField(default=dict, blank=True, editable=False)
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default=default_language)
    whole_page = models.BooleanField(default=False, verbose_name=_("whole page"))
    providers = models.ManyToManyField(Provider, blank=True, related_name="subscribers")
    ai_models = models.ManyToManyField(AIModel, blank=True, related_name="subscribers", verbose_name=_("models"))
    # Part of every signed link: a deleted and re-created subscriber's old links stay dead.
    key = models.CharField(max_length=40, default=new_key, editable=False)

    requested_at = models.DateTimeField(default=timezone.now, help_text=_("Last sign-up request."))
    confirmed_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("subscriber")
        indexes = [models.Index(fields=["confirmed_at", "paused_at"], name="subscriber_active")]

    def __str__(self) -> str:
        return self.email or self.webhook_url or (f"push #{self.pk}" if self.push_endpoint else f"#{self.pk}")

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None and self.paused_at is None

    def follows(self) -> dict:
        """What the subscriber follows, as public slugs."""
        return {
            "whole_page": self.whole_page,
            "providers": sorted(p.slug for p in self.providers.all()),
            "models": sorted(m.public_slug for m in self.ai_models.select_related("provider")),
        }

    def pause(self, reason: str, now=None) -> bool:
        """Stop sending (once) and drop what was still waiting; an operator resumes it in the admin."""
        now = now or timezone.now()
        done = Subscriber.objects.filter(pk=self.pk, paused_at__isnull=True).update(paused_at=now, paused_reason=reason)
        if done:
            self.messages.filter(state=Outbox.State.PENDING).update(
                state=Outbox.State.CANCELLED, last_error=reason, claimed_by="", claimed_until=None
            )
        return bool(done)

    @classmethod
    def following(cls, provider_ids: set[int], model_ids: set[int]) -> models.QuerySet[Subscriber]:
        """Active subscribers who follow the page, one of the providers or one of the models."""
        through_providers = cls.providers.through.objects.filter(
            subscriber_id=OuterRef("pk"), provider_id__in=provider_ids
        )
        through_models = cls.ai_models.through.objects.filter(subscriber_id=OuterRef("pk"), aimodel_id__in=model_ids)
        return cls.objects.filter(confirmed_at__isnull=False, paused_at__isnull=True).filter(
            Q(whole_page=True) | Exists(through_providers) | Exists(through_models)
        )


class Announcement(models.Model):
    """Something subscribers are told about, once: an incident update, a maintenance phase, a status flip."""

    class Kind(models.TextChoices):
        INCIDENT = "incident", _("Incident update")
        MAINTENANCE = "maintenance", _("Maintenance")
        STATUS = "status", _("Status change")

    # What makes it one event however often it is seen: "incident-update:12", "maintenance:3:…:started".
    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # What happened, in every page language where it has text; rendered per subscriber's language.
    payload = models.JSONField(default=dict)
    recipients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.key


class SubscriberMessage(Outbox):
    """One message to one subscriber: a confirmation, or one announcement (never two of the same)."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", _("Confirmation")
        ANNOUNCEMENT = "announcement", _("Announcement")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="messages")
    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # A confirmation's requested choice (signed into its link when sent).
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "announcement"], name="one_message_per_subscriber_event")
        ]
        # In the claim's order: a claim reads the first few hundred due rows, not a hundred thousand sorted.
        indexes = [models.Index(fields=["state", "next_attempt_at", "id"], name="subscriber_message_claim")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} to {self.subscriber_id}"
