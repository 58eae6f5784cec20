"""Evidence: check results (a time series), their rollups, the probe schedule and remote collectors' tokens.

Stored evidence lives with the collectors that write it; the read side (snapshot, metrics) reads it
from here. This module imports only the core (the outcome vocabulary and the registry), never
probing code, so a reader of results depends on their stored shape alone. Keeping the tables here
also keeps the TimescaleDB hypertable and its migrations where they have always been.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from timescale.db.models.fields import TimescaleDateTimeField

from monitoring.models import AIModel, Credential
from monitoring.outcomes import Outcome


class CheckResult(models.Model):
    """One probe's result. On TimescaleDB this table is a hypertable on `time` (see collectors/timescale.py)."""

    # A plain timestamp column under the PostgreSQL and SQLite engines; the TimescaleDB engine turns
    # the table into a hypertable partitioned by it, one chunk a day.
    time = TimescaleDateTimeField(interval="1 day", default=timezone.now)
    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="check_results", db_index=False)
    region = models.CharField(max_length=32, default="default")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The latest results of a model, and a model's time range.
            models.Index(fields=["model", "-time"], name="checkresult_model_time"),
            # Retention and rollups scan by time alone.
            models.Index(fields=["time"], name="checkresult_time"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.time:%Y-%m-%d %H:%M:%S} {self.outcome}"


class Period(models.TextChoices):
    MINUTE = "minute", _("minute")
    HOUR = "hour", _("hour")
    DAY = "day", _("day")


class CheckRollup(models.Model):
    """Results of one model over one minute, hour or day: counts by outcome and latency figures."""

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="rollups", db_index=False)
    period = models.CharField(max_length=6, choices=Period.choices)
    bucket = models.DateTimeField()
    total = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    provider_fault = models.PositiveIntegerField(default=0)
    probe_fault = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)
    timeout = models.PositiveIntegerField(default=0)
    broken_stream = models.PositiveIntegerField(default=0)
    latency_p50_ms = models.FloatField(null=True)
    latency_p95_ms = models.FloatField(null=True)
    latency_max_ms = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "period", "bucket"], name="unique_rollup_bucket"),
        ]
        indexes = [models.Index(fields=["period", "bucket"], name="rollup_period_bucket")]

    def __str__(self) -> str:
        return f"{self.model_id} {self.period} {self.bucket:%Y-%m-%d %H:%M}"

    @property
    def failures(self) -> int:
        """Results that count against the provider."""
        return self.provider_fault + self.timeout + self.broken_stream


class RollupCursor(models.Model):
    """Up to where each period's rollups are complete. Writers of late results move it back."""

    period = models.CharField(max_length=6, choices=Period.choices, unique=True)
    complete_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.period} until {self.complete_until}"


class ProbeSlot(models.Model):
    """When a model is next due in one region. Workers claim due slots with a skip-locked update."""

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="probe_slots")
    region = models.CharField(max_length=32, default="default")
    next_due_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "region"], name="unique_probe_slot")]
        indexes = [models.Index(fields=["region", "next_due_at"], name="probeslot_due")]

    def __str__(self) -> str:
        return f"{self.model_id}@{self.region} due {self.next_due_at}"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CollectorToken(models.Model):
    """Lets a remote collector push results. Only a hash is stored; the token is shown once."""

    name = models.CharField(max_length=100, unique=True)
    region = models.CharField(max_length=32, default="default", help_text=_("Region its results are recorded under."))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def issue(cls, name: str, region: str = "default") -> tuple[CollectorToken, str]:
        token = "col_" + secrets.token_urlsafe(32)
        return cls.objects.create(name=name, region=region, token_hash=_hash_token(token)), token

    @classmethod
    def authenticate(cls, token: str) -> CollectorToken | None:
        return cls.objects.filter(token_hash=_hash_token(token), active=True).first()


class Agent(models.Model):
    """A remote collector agent: probes from its region and pushes results. Only a hash of its token is stored.

    The health fields are what the agent reported with its latest batch; `stored` and `last_seq` are the
    site's own count. A result is stored once: a batch's results with a sequence at or below `last_seq`
    were stored before (the agent sends in order), so a retried batch never counts twice.
    """

    name = models.CharField(max_length=100, unique=True)
    region = models.CharField(max_length=32, help_text=_("Region its results are recorded under."))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    active = models.BooleanField(default=True, help_text=_("Clear to revoke the agent's token."))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    version = models.CharField(max_length=40, blank=True, default="", editable=False)
    results_per_s = models.FloatField(default=0, editable=False)
    spool_depth = models.PositiveIntegerField(default=0, editable=False)
    spool_dropped = models.PositiveBigIntegerField(default=0, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)
    clock_skew_s = models.FloatField(null=True, blank=True, editable=False)
    clock_skewed = models.BooleanField(default=False, editable=False)
    sent = models.PositiveBigIntegerField(default=0, editable=False)
    stored = models.PositiveBigIntegerField(default=0, editable=False)
    dropped = models.PositiveBigIntegerField(
        default=0, editable=False, help_text=_("Results for unknown or disabled models, counted and dropped.")
    )
    rejected = models.PositiveBigIntegerField(
        default=0, editable=False, help_text=_("Results dated too far in the future, rejected.")
    )
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["region", "name"]
        verbose_name = _("remote agent")
        verbose_name_plural = _("remote agents")

    def __str__(self) -> str:
        return f"{self.name} ({self.region})"

    @classmethod
    def issue(cls, name: str, region: str) -> tuple[Agent, str]:
        token = "agt_" + secrets.token_urlsafe(32)
        return cls.objects.create(name=name, region=region, token_hash=_hash_token(token)), token

    def reissue(self, region: str) -> str:
        """A new token (the old one stops working), active again, for `region`."""
        token = "agt_" + secrets.token_urlsafe(32)
        self.token_hash, self.region, self.active = _hash_token(token), region, True
        self.save(update_fields=["token_hash", "region", "active"])
        return token

    @classmethod
    def authenticate(cls, token: str) -> Agent | None:
        return cls.objects.filter(token_hash=_hash_token(token), active=True).first()


class CredentialShare(models.Model):
    """An operator's choice to send a credential to the agents of some regions (over HTTPS only).

    Without one, agents never receive a credential: they resolve its environment variable themselves.
    """

    credential = models.OneToOneField(Credential, on_delete=models.CASCADE, related_name="agent_share")
    regions = models.CharField(
        max_length=300, help_text=_("Comma-separated regions whose agents may receive this credential's key.")
    )

    class Meta:
        verbose_name = _("credential shared with agents")
        verbose_name_plural = _("credentials shared with agents")

    def __str__(self) -> str:
        return f"{self.credential} -> {self.regions}"

    def region_list(self) -> list[str]:
        return [r.strip() for r in self.regions.split(",") if r.strip()]
