"""Anomalies as records (opened when a series' score crosses the threshold, closed after a quiet period),
their event log, and each series' learned detector state."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from monitoring.models import AIModel


class Metric(models.TextChoices):
    TTFT = "ttft", _("time to first token")
    LATENCY = "latency", _("latency")
    TOKENS_PER_S = "tokens_per_s", _("output speed")
    ERROR_RATIO = "error_ratio", _("error ratio")


class Direction(models.TextChoices):
    ABOVE = "above", _("above the expected range")
    BELOW = "below", _("below the expected range")


class Anomaly(models.Model):
    """One unusual stretch of one metric series. An annotation beside the status: it never sets it by itself."""

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="anomalies")
    metric = models.CharField(max_length=20, choices=Metric.choices)
    region = models.CharField(max_length=32, blank=True, default="", help_text=_("Blank when not known."))
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text=_("Empty while the anomaly is open."))
    # The last point that was still unusual (scored over the threshold, or outside the expected range):
    # the quiet period counts from it.
    last_unusual_at = models.DateTimeField()
    peak_score = models.FloatField()
    expected_low = models.FloatField()
    expected_high = models.FloatField()
    observed = models.FloatField(help_text=_("The value that opened the anomaly."))
    direction = models.CharField(max_length=5, choices=Direction.choices)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("anomaly")
        verbose_name_plural = _("anomalies")
        indexes = [
            models.Index(fields=["model", "-started_at"], name="anomaly_model_started"),
            models.Index(fields=["ended_at"], name="anomaly_ended", condition=Q(ended_at__isnull=True)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "metric", "region"],
                condition=Q(ended_at__isnull=True),
                name="one_open_anomaly_per_series",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.metric} {self.region or '-'} {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class AnomalyEvent(models.Model):
    """The anomalies' event log: one row per opening and closing. Live hubs follow its id, so an event
    reaches clients even when it was not heard on Redis."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("opened")
        CLOSED = "closed", _("closed")

    anomaly = models.ForeignKey(Anomaly, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.pk} {self.kind} {self.anomaly_id}"


class SeriesState(models.Model):
    """What one series' detector has learned (`SeriesDetector.to_state()`), kept so a restart loses nothing."""

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="anomaly_series")
    metric = models.CharField(max_length=20, choices=Metric.choices)
    region = models.CharField(max_length=32, blank=True, default="")
    state = models.JSONField(default=dict)
    # The time of the last result fed: results up to it are never fed twice.
    last_time = models.DateTimeField(null=True)
    # The error ratio's window of recent outcomes (1 = a provider fault), oldest first.
    window = models.JSONField(default=list, blank=True)
    learning = models.BooleanField(default=True)
    # The band the last point was expected in (drawn on the model's charts).
    expected_low = models.FloatField(null=True)
    expected_high = models.FloatField(null=True)
    rejected = models.PositiveBigIntegerField(default=0, help_text=_("Values refused as implausible."))
    errors = models.PositiveBigIntegerField(default=0, help_text=_("Detector errors on this series."))
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "metric", "region"], name="unique_anomaly_series")]

    def __str__(self) -> str:
        return f"{self.model_id} {self.metric} {self.region or '-'}"


class DetectionCursor(models.Model):
    """Up to where results have been read (one row). The detection run locks it: one run at a time."""

    read_until = models.DateTimeField(null=True)
    # The last run stopped at its batch limit: the next one starts exactly there, without the late margin.
    behind = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"read until {self.read_until}"
