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


# -- service level objectives and the latency forecast ------------------------------------------------


class Sli(models.TextChoices):
    """What an objective measures. Availability: answered probes against provider faults, timeouts and
    broken streams. Latency: answered probes faster than the model's p95 TTFT objective against slower ones."""

    AVAILABILITY = "availability", _("availability")
    LATENCY = "latency", _("latency")


class SloCount(models.Model):
    """Good and bad events of one model over one minute, or one hour once the minute is old enough to fold.

    Probe faults and 429s on our own key are neither good nor bad (they say nothing about the provider),
    and a stretch without results has no row: time without evidence never counts as good.
    """

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="slo_counts", db_index=False)
    start = models.DateTimeField()
    minutes = models.PositiveSmallIntegerField()  # 1 or 60
    answered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    fast = models.PositiveIntegerField(default=0)
    slow = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "minutes", "start"], name="unique_slo_count")]
        indexes = [models.Index(fields=["minutes", "start"], name="slo_count_start")]

    def __str__(self) -> str:
        return f"{self.model_id} {self.start:%Y-%m-%d %H:%M} /{self.minutes}"


class SloStatus(models.Model):
    """A model's objectives as the last SLO run found them: the error budget left and the burn rates."""

    model = models.OneToOneField(AIModel, on_delete=models.CASCADE, related_name="slo_status")
    availability_target = models.FloatField(help_text=_("Objective as a fraction, e.g. 0.999."))
    latency_objective_ms = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    # Events counted in the window: availability (answered, failed) and latency (fast, slow).
    answered = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    fast = models.PositiveBigIntegerField(default=0)
    slow = models.PositiveBigIntegerField(default=0)
    # The first bucket with evidence in the window: a budget over two days of evidence says so.
    evidence_since = models.DateTimeField(null=True)
    # 1 = untouched, 0 = spent, negative = overspent; null without any counted event.
    availability_budget_left = models.FloatField(null=True)
    latency_budget_left = models.FloatField(null=True)
    # {"availability": {"5m": rate or null, "30m": …, "1h": …, "6h": …}, "latency": {…}}
    burn_rates = models.JSONField(default=dict)
    # The burn alerts open after the run: [{"sli", "speed", "since"}] (the page reads them from here).
    burning = models.JSONField(default=list)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.model_id} SLO @ {self.updated_at:%Y-%m-%d %H:%M}"


class BurnAlert(models.Model):
    """One burn episode of one objective: it opens when the long and the short window both burn the error
    budget at the rule's rate or faster, and ends when the long window no longer does. Channels that
    opted in hear of it once, when it opens."""

    class Speed(models.TextChoices):
        FAST = "fast", _("fast burn")
        SLOW = "slow", _("slow burn")

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="burn_alerts")
    sli = models.CharField(max_length=12, choices=Sli.choices)
    speed = models.CharField(max_length=4, choices=Speed.choices)
    threshold = models.FloatField(help_text=_("The burn rate of the rule (times the sustainable rate)."))
    long_window = models.CharField(max_length=4)
    short_window = models.CharField(max_length=4)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    long_burn = models.FloatField(help_text=_("The long window's burn rate when the alert opened."))
    short_burn = models.FloatField(help_text=_("The short window's burn rate when the alert opened."))
    peak_burn = models.FloatField()

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("burn-rate alert")
        verbose_name_plural = _("burn-rate alerts")
        constraints = [
            models.UniqueConstraint(
                fields=["model", "sli", "speed"], condition=Q(ended_at__isnull=True), name="one_open_burn_alert"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.sli} {self.speed} {self.started_at:%Y-%m-%d %H:%M}"


class SloCursor(models.Model):
    """Up to when results have been counted (one row). The SLO run locks it: one run at a time."""

    counted_until = models.DateTimeField(null=True)
    # The first run counts only the minutes still kept; older hours are counted back a few per run down to
    # the window's start, so that no run holds the lock long. Null: before the first run.
    hours_counted_from = models.DateTimeField(null=True)
    # The hour the latency forecasts were last made for: one run in all makes them, once an hour.
    forecast_hour = models.DateTimeField(null=True)
    # A new random mark whenever hour counts change (minutes folded, history counted back): a run reads
    # the hour totals again only then (or when the window moves).
    hours_version = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"counted until {self.counted_until}"


class LatencyForecast(models.Model):
    """A model's latency forecast for one coming hour: p50 and p95, each with its 80 % interval."""

    model = models.OneToOneField(AIModel, on_delete=models.CASCADE, related_name="latency_forecast")
    hour = models.DateTimeField(help_text=_("Start of the hour forecast."))
    p50_ms = models.FloatField()
    p50_low_ms = models.FloatField()
    p50_high_ms = models.FloatField()
    p95_ms = models.FloatField()
    p95_low_ms = models.FloatField()
    p95_high_ms = models.FloatField()
    method = models.CharField(max_length=10)
    errors = models.PositiveIntegerField(help_text=_("Past forecasts the interval was measured on."))
    # Indexed: the snapshot's content mark reads MAX(made_at) on every poll.
    made_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.model_id} forecast for {self.hour:%Y-%m-%d %H:%M}"
