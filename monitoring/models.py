"""The registry (providers, models, credentials) and the status record every model carries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from monitoring import probe_kinds
from monitoring.fields import EncryptedTextField
from monitoring.status import Status, displayed_status, shown_record

MIN_INTERVAL_SECONDS = 10


class Provider(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    url = models.URLField(blank=True, help_text=_("The provider's own site or status page."))
    display_order = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return self.name


class Credential(models.Model):
    """An API key used by probes. Stored server-side; never rendered on a public page or API."""

    name = models.CharField(max_length=100, unique=True)
    # Encrypted at rest (monitoring.fields).
    api_key = EncryptedTextField(blank=True, help_text=_("Write-only. Leave empty to keep the current key."))
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text=_("Or the name of an environment variable of the collector that holds the key."),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.api_key and not self.api_key_env:
            raise ValidationError(_("Give an API key or the environment variable that holds it."))

    @property
    def masked(self) -> str:
        if self.api_key:
            return "•" * 8 + self.api_key[-4:] if len(self.api_key) > 8 else "•" * 8
        return f"${self.api_key_env}"


class ModelKind(models.TextChoices):
    CHAT = "chat", _("Chat")
    EMBEDDING = "embedding", _("Embedding")
    IMAGE = "image", _("Image")
    OTHER = "other", _("Other")


class ProbeKind(models.TextChoices):
    OPENAI_CHAT = "openai_chat", _("OpenAI-compatible chat completions (streamed)")
    ANTHROPIC_MESSAGES = "anthropic_messages", _("Anthropic Messages (streamed)")
    OPENAI_EMBEDDINGS = "openai_embeddings", _("OpenAI-compatible embeddings")
    HTTP = "http", _("HTTP(S) with conditions")
    TCP = "tcp", _("TCP connect")
    PUSH = "push", _("Pushed by a remote collector")


class AIModel(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=ModelKind.choices, default=ModelKind.CHAT)

    probe_kind = models.CharField(max_length=30, choices=ProbeKind.choices, default=ProbeKind.OPENAI_CHAT)
    endpoint = models.CharField(
        max_length=500,
        blank=True,
        help_text=_(
            "Base URL of the API (for example https://api.openai.com/v1), the URL to fetch, or host:port for TCP."
        ),
    )
    upstream_model = models.CharField(
        max_length=200, blank=True, help_text=_("The model id sent to the API; empty means the slug.")
    )
    probe_config = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Probe options, for example {"max_tokens": 16} or {"conditions": ["[STATUS] == 200"]}.'),
    )
    credential = models.ForeignKey(Credential, on_delete=models.SET_NULL, null=True, blank=True, related_name="models")
    interval_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(MIN_INTERVAL_SECONDS), MaxValueValidator(86400)]
    )
    timeout_seconds = models.FloatField(default=30, validators=[MinValueValidator(0.1)])
    latency_threshold_ms = models.PositiveIntegerField(
        default=10000, help_text=_("Total latency above this is degraded performance.")
    )
    ttft_threshold_ms = models.PositiveIntegerField(
        default=5000, help_text=_("Time to first token above this is degraded performance (streamed probes).")
    )
    failures_to_confirm = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)], help_text=_("Consecutive failures before an outage is declared.")
    )
    successes_to_recover = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)], help_text=_("Consecutive successes before recovery.")
    )
    # A database default too: raw SQL inserts and data migrations that predate the column still work.
    anomaly_degrades = models.BooleanField(
        default=False,
        db_default=False,
        help_text=_(
            "Show the model as degraded while an anomaly is open on it (only when its evidence says operational)."
        ),
    )
    # Service level objectives (the error budget and burn-rate alerts in anomalies/slo*.py). Database
    # defaults too, like anomaly_degrades: rows inserted by raw SQL still get them.
    slo_availability_percent = models.DecimalField(
        _("availability objective (%)"),
        max_digits=6,
        decimal_places=3,
        default=Decimal("99.9"),
        db_default=Decimal("99.9"),
        validators=[MinValueValidator(Decimal("50")), MaxValueValidator(Decimal("99.999"))],
        help_text=_(
            "Share of counted probes that must be answered (provider faults, timeouts and broken streams are not)."
        ),
    )
    slo_ttft_ms = models.PositiveIntegerField(
        _("latency objective (p95 time to first token, ms)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "95 % of answered probes must get their first token (total latency for probes without one) "
            "faster than this. Empty: the time to first token threshold."
        ),
    )

    public = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    display_order = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["provider__display_order", "provider__name", "display_order", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "slug"], name="unique_model_slug_per_provider")]
        verbose_name = _("AI model")

    def __str__(self) -> str:
        return f"{self.provider.slug}/{self.slug}" if self.provider_id else self.slug

    def save(self, *args, **kwargs) -> None:
        # Not auto_now: fixtures (raw saves) that omit the field still get a value from the default.
        self.updated_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    @property
    def public_slug(self) -> str:
        return f"{self.provider.slug}/{self.slug}"

    @property
    def latency_objective_ms(self) -> int:
        """The p95 time to first token objective: its own, else the TTFT threshold."""
        return self.slo_ttft_ms or self.ttft_threshold_ms

    def shown_status(self, now: datetime | None = None) -> str:
        """The status a reader may be shown now (see displayed_status); reads the status row."""
        row = self.status_row
        return displayed_status(
            row.status,
            last_checked_at=row.last_checked_at,
            interval_seconds=self.interval_seconds,
            manual=row.manual,
            now=now or timezone.now(),
        )

    def shown_record(self, now: datetime | None = None) -> tuple[str, datetime, str]:
        """The status a reader is shown, since when and why (see monitoring.status.shown_record)."""
        row = self.status_row
        return shown_record(
            row.status,
            row.since,
            row.message,
            last_checked_at=row.last_checked_at,
            interval_seconds=self.interval_seconds,
            manual=row.manual,
            now=now or timezone.now(),
        )

    def shown_regions(self, now: datetime | None = None) -> list[dict]:
        """Each region's view of the model (status as shown, last check, latency, reason), by region name.

        Reads `region_statuses` (prefetch it for many models). A region whose evidence is stale shows
        unknown: it contributes nothing to the model's status.
        """
        now = now or timezone.now()
        rows = sorted(self.region_statuses.all(), key=lambda r: r.region)
        return [r.shown_view(self.interval_seconds, now) for r in rows]

    def clean(self) -> None:
        # The probe kind's own rules (endpoint form, unknown options, bad values), as collectors registered them.
        errors = probe_kinds.errors_for(self.probe_kind, self.endpoint, self.probe_config)
        if self.interval_seconds is not None and self.interval_seconds < MIN_INTERVAL_SECONDS:
            errors["interval_seconds"] = _("The interval must be at least %(n)d seconds.") % {"n": MIN_INTERVAL_SECONDS}
        if (
            self.timeout_seconds is not None
            and self.interval_seconds is not None
            and self.timeout_seconds > self.interval_seconds
        ):
            errors["timeout_seconds"] = _("The timeout cannot be longer than the interval.")
        if errors:
            raise ValidationError(errors)


class ModelStatus(models.Model):
    """The current status of one model. Exactly one per model, created with it (a database trigger)."""

    model = models.OneToOneField(AIModel, on_delete=models.CASCADE, related_name="status_row")
    # Database defaults, so that the row the trigger inserts is complete on every creation path.
    status = models.CharField(
        max_length=30, choices=Status.choices, default=Status.UNKNOWN, db_default=Status.UNKNOWN, db_index=True
    )
    since = models.DateTimeField(db_default=Now())
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, default="", db_default="")
    manual = models.BooleanField(
        default=False, db_default=False, help_text=_("Set by an operator; evidence does not change it.")
    )
    # Who set a manual status: shown in the admin and the audit trail, never to the public.
    set_by = models.CharField(_("set by"), max_length=150, blank=True, default="", db_default="")

    class Meta:
        verbose_name = _("model status")
        verbose_name_plural = _("model statuses")

    def __str__(self) -> str:
        return f"{self.model_id}: {self.status}"


class RegionStatus(models.Model):
    """One region's view of a model: the verdict of that region's own evidence, its last check and latency.

    Written with every evaluation; the model's status combines the regions (ModelStatus). A region whose
    evidence went stale is shown unknown and counts for nothing.
    """

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="region_statuses")
    region = models.CharField(max_length=32)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.UNKNOWN)
    last_checked_at = models.DateTimeField()
    last_latency_ms = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "region"], name="unique_region_status")]
        verbose_name = _("region status")
        verbose_name_plural = _("region statuses")

    def __str__(self) -> str:
        return f"{self.model_id}@{self.region}: {self.status}"

    def shown_status(self, interval_seconds: int, now: datetime | None = None) -> str:
        """The region's status, or unknown once its evidence is stale."""
        return displayed_status(
            self.status,
            last_checked_at=self.last_checked_at,
            interval_seconds=interval_seconds,
            manual=False,
            now=now or timezone.now(),
        )

    # The fields region_view() reads, in its order: a listing passes them as values rows.
    VIEW_FIELDS = ("region", "status", "last_checked_at", "last_latency_ms", "message")

    def shown_view(self, interval_seconds: int, now: datetime | None = None) -> dict:
        """The region's view as readers get it (AIModel.shown_regions; the API's `regions`)."""
        values = (getattr(self, name) for name in self.VIEW_FIELDS)
        return region_view(*values, interval_seconds=interval_seconds, now=now or timezone.now())


def region_view(
    region: str,
    status: str,
    last_checked_at: datetime,
    last_latency_ms: float | None,
    message: str,
    *,
    interval_seconds: int,
    now: datetime,
) -> dict:
    """One region's view of a model: its status as shown (unknown once stale), last check, latency and reason."""
    shown = displayed_status(
        status, last_checked_at=last_checked_at, interval_seconds=interval_seconds, manual=False, now=now
    )
    return {
        "region": region,
        "status": shown,
        "last_checked_at": last_checked_at,
        "last_latency_ms": last_latency_ms,
        "message": message,
    }


class StatusChange(models.Model):
    """One row per transition. The increasing id is the event sequence live updates and alerts use."""

    class Source(models.TextChoices):
        COLLECTOR = "collector", _("Collector")
        OPERATOR = "operator", _("Operator")
        STALENESS = "staleness", _("No fresh evidence")
        MAINTENANCE = "maintenance", _("Maintenance")

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=30, choices=Status.choices)
    to_status = models.CharField(max_length=30, choices=Status.choices)
    at = models.DateTimeField(db_index=True)
    reason = models.TextField(blank=True)
    manual = models.BooleanField(default=False)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.COLLECTOR)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["model", "-id"], name="statuschange_model_recent")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_id}: {self.from_status} -> {self.to_status}"


def _cron_days_and_times(expression: str) -> tuple:
    """The five fields of a cron expression (minute hour day-of-month month day-of-week) as sets."""
    from celery.schedules import ParseException, crontab_parser

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("expected five fields: minute hour day-of-month month day-of-week")
    # Cron accepts 7 for Sunday as well as 0.
    fields[4] = ",".join("0" if part == "7" else part for part in fields[4].split(","))
    try:
        minutes = crontab_parser(60).parse(fields[0])
        hours = crontab_parser(24).parse(fields[1])
        days = crontab_parser(31, 1).parse(fields[2])
        months = crontab_parser(12, 1).parse(fields[3])
        weekdays = crontab_parser(7).parse(fields[4])
    except (ParseException, ValueError, KeyError) as exc:
        raise ValueError(str(exc) or "invalid field") from None
    # As in cron: with both day fields restricted, a day matching either one is a match.
    either_day = fields[2] != "*" and fields[4] != "*"
    return sorted(minutes), sorted(hours), days, months, weekdays, either_day


def _cron_starts(expression: str, tz: ZoneInfo, after: datetime, before: datetime) -> Iterator[datetime]:
    """Times matching a cron expression (read in `tz`) in [after, before), in order."""
    minutes, hours, days, months, weekdays, either_day = _cron_days_and_times(expression)
    day = after.astimezone(tz).date()
    last = before.astimezone(tz).date()
    while day <= last:
        on_day, on_weekday = day.day in days, (day.weekday() + 1) % 7 in weekdays
        if day.month in months and ((on_day or on_weekday) if either_day else (on_day and on_weekday)):
            for hour in hours:
                for minute in minutes:
                    start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    if after <= start < before:
                        yield start
        day += timedelta(days=1)


@dataclass(frozen=True)
class MaintenanceOccurrence:
    """One concrete window: a one-off maintenance, or one repetition of a recurring one."""

    maintenance: Maintenance
    starts_at: datetime
    ends_at: datetime

    def status(self, now: datetime) -> str:
        """Statuspage's words: scheduled, in_progress or completed."""
        if now < self.starts_at:
            return "scheduled"
        return "in_progress" if now < self.ends_at else "completed"


class Maintenance(models.Model):
    """A planned window during which a model (or every model of a provider) is under maintenance.

    One-off: the window is [starts_at, ends_at). Recurring (`recurrence` set, a cron expression read
    in `time_zone`): each matching time opens a window of `duration_minutes`; starts_at and ends_at
    bound the series (an occurrence starts at or after starts_at and before ends_at).
    """

    MAX_DURATION_MINUTES = 7 * 24 * 60

    title = models.CharField(max_length=200)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, null=True, blank=True, related_name="maintenances")
    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, null=True, blank=True, related_name="maintenances")
    # Further models of one window (the API takes a list); the window covers model, these and provider's models.
    models_affected = models.ManyToManyField(AIModel, blank=True, related_name="maintenance_windows")
    starts_at = models.DateTimeField(db_index=True)
    ends_at = models.DateTimeField(db_index=True)
    description = models.TextField(blank=True)
    recurrence = models.CharField(
        max_length=100,
        blank=True,
        help_text=_(
            "Empty for a one-off window. Or a cron expression (minute hour day-of-month month day-of-week), "
            "for example “0 3 * * sun” for every Sunday at 03:00; start and end then bound the series."
        ),
    )
    duration_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_MINUTES)],
        help_text=_("Length of each occurrence of a recurring window."),
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text=_("The time zone the recurrence is read in, for example Asia/Seoul.")
    )
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["starts_at"]
        # A target (model, models_affected or provider) is checked by clean() and the API: a
        # many-to-many cannot be part of a database constraint.
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="maintenance_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        # The snapshot notices an edit by it (see publishing.snapshot.content_mark).
        self.updated_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        has_more_models = self.pk is not None and self.models_affected.exists()
        if not self.provider_id and not self.model_id and not has_more_models:
            raise ValidationError(_("Choose a model or a provider."))
        errors: dict[str, str] = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The end must come after the start.")
        try:
            ZoneInfo(self.time_zone)
        except (ValueError, ZoneInfoNotFoundError):
            errors["time_zone"] = _("Unknown time zone; use a name such as UTC or Asia/Seoul.")
        if self.recurrence:
            try:
                _cron_days_and_times(self.recurrence)
            except ValueError as exc:
                errors["recurrence"] = _("Not a valid cron expression: %(error)s") % {"error": exc}
            if not self.duration_minutes:
                errors["duration_minutes"] = _("A recurring window needs a duration.")
        if errors:
            raise ValidationError(errors)

    @property
    def recurring(self) -> bool:
        return bool(self.recurrence)

    def occurrences(self, start: datetime, end: datetime) -> list[MaintenanceOccurrence]:
        """The windows of this maintenance that overlap [start, end), in order."""
        if not self.recurrence:
            if self.starts_at < end and self.ends_at > start:
                return [MaintenanceOccurrence(self, self.starts_at, self.ends_at)]
            return []
        length = timedelta(minutes=self.duration_minutes or 0)
        after = max(start - length + timedelta(microseconds=1), self.starts_at)
        before = min(end, self.ends_at)
        if after >= before:
            return []
        try:
            starts = list(_cron_starts(self.recurrence, ZoneInfo(self.time_zone), after, before))
        except (ValueError, ZoneInfoNotFoundError):
            # A row saved around clean() must not stop the sweep for every other model.
            return []
        return [MaintenanceOccurrence(self, begin, begin + length) for begin in starts]

    def target_models(self) -> list[AIModel]:
        """The models named by this window itself (its provider's models aside)."""
        named = [self.model] if self.model_id else []
        return named + [m for m in self.models_affected.all() if m.pk != self.model_id]

    def is_active(self, now: datetime) -> bool:
        return bool(self.occurrences(now, now + timedelta(microseconds=1)))

    @classmethod
    def _candidates(cls, start: datetime, end: datetime) -> models.QuerySet[Maintenance]:
        """Windows that may have an occurrence overlapping [start, end)."""
        one_off = models.Q(recurrence="", starts_at__lt=end, ends_at__gt=start)
        # A recurring occurrence may run past the series' end by up to its duration.
        recurring = ~models.Q(recurrence="") & models.Q(
            starts_at__lt=end, ends_at__gt=start - timedelta(minutes=cls.MAX_DURATION_MINUTES)
        )
        return cls.objects.filter(one_off | recurring)

    @classmethod
    def active_model_ids(cls, now, model_ids=None) -> set[int]:
        """Ids of the models under maintenance at `now` (optionally among `model_ids`)."""
        candidates = cls._candidates(now, now + timedelta(microseconds=1)).prefetch_related(
            models.Prefetch("models_affected", queryset=AIModel.objects.only("pk"))
        )
        windows = [w for w in candidates if w.is_active(now)]
        direct = {w.model_id for w in windows if w.model_id}
        direct |= {m.pk for w in windows for m in w.models_affected.all()}
        providers = {w.provider_id for w in windows if w.provider_id}
        if providers:
            by_provider = AIModel.objects.filter(provider_id__in=providers)
            if model_ids is not None:
                by_provider = by_provider.filter(pk__in=model_ids)
            direct |= set(by_provider.values_list("pk", flat=True))
        return direct if model_ids is None else direct & set(model_ids)

    @classmethod
    def covered(cls, start: datetime, end: datetime) -> list[tuple[set[int], datetime, datetime]]:
        """Every occurrence overlapping [start, end), recurrences included, with the ids of the models it
        covers (its model, its further models and its provider's): (ids, starts_at, ends_at)."""
        windows = cls._candidates(start, end).prefetch_related(
            models.Prefetch("models_affected", queryset=AIModel.objects.only("pk"))
        )
        found = [(w, o) for w in windows for o in w.occurrences(start, end)]
        providers = {w.provider_id for w, _ in found if w.provider_id}
        by_provider: dict[int, set[int]] = {}
        for pk, provider_id in AIModel.objects.filter(provider_id__in=providers).values_list("pk", "provider_id"):
            by_provider.setdefault(provider_id, set()).add(pk)
        covered = []
        for w, o in found:
            ids = {w.model_id} if w.model_id else set()
            ids |= {m.pk for m in w.models_affected.all()} | by_provider.get(w.provider_id, set())
            if ids:
                covered.append((ids, o.starts_at, o.ends_at))
        return covered

    @classmethod
    def upcoming(cls, now: datetime | None = None, days: int = 7, limit: int = 100) -> list[MaintenanceOccurrence]:
        """Occurrences in progress at `now` or starting within `days`, soonest first (at most `limit`)."""
        now = now or timezone.now()
        end = now + timedelta(days=days)
        found: list[MaintenanceOccurrence] = []
        windows = cls._candidates(now, end).select_related("provider", "model__provider")
        for window in windows.prefetch_related(
            models.Prefetch("models_affected", queryset=AIModel.objects.select_related("provider"))
        ):
            found += window.occurrences(now, end)[:limit]
        return sorted(found, key=lambda o: (o.starts_at, o.maintenance.pk))[:limit]


class Incident(models.Model):
    """An incident on the public page, with Statuspage's lifecycle. Opened by hand or by the alerts app."""

    class State(models.TextChoices):
        INVESTIGATING = "investigating", _("Investigating")
        IDENTIFIED = "identified", _("Identified")
        MONITORING = "monitoring", _("Monitoring")
        RESOLVED = "resolved", _("Resolved")

    class Impact(models.TextChoices):
        NONE = "none", _("None")
        MINOR = "minor", _("Minor")
        MAJOR = "major", _("Major")
        CRITICAL = "critical", _("Critical")

    title = models.CharField(max_length=200)
    state = models.CharField(max_length=20, choices=State.choices, default=State.INVESTIGATING, db_index=True)
    impact = models.CharField(max_length=10, choices=Impact.choices, default=Impact.MINOR)
    provider = models.ForeignKey(Provider, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents")
    models_affected = models.ManyToManyField(AIModel, blank=True, related_name="incidents")
    automatic = models.BooleanField(default=False, help_text=_("Opened by the collectors' evidence."))
    # An automatic title in every page language ({"ko": ..., "en": ..., "ja": ...}); see in_language().
    title_translations = models.JSONField(default=dict, blank=True, editable=False)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        # Every save moves updated_at: an operator's edit reaches the page as fast as a status change.
        self.updated_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.state != self.State.RESOLVED

    def title_in(self, language: str) -> str:
        return in_language(self.title, self.title_translations, language)

    def titles(self) -> dict[str, str]:
        """The title in every page language."""
        return {code: self.title_in(code) for code, _name in settings.LANGUAGES}

    def add_update(
        self, state: str, body: str, at: datetime | None = None, translations: dict[str, str] | None = None
    ) -> IncidentUpdate:
        """Post a message to the timeline; the incident takes its state."""
        update = IncidentUpdate.objects.create(
            incident=self, state=state, body=body, body_translations=translations or {}, at=at or timezone.now()
        )
        self.follow_updates()
        return update

    def follow_updates(self) -> None:
        """Take the state of the latest update (resolved sets resolved_at; reopening clears it)."""
        latest = self.updates.order_by("-at", "-id").first()
        if latest is None:
            return
        self.state = latest.state
        if latest.state == self.State.RESOLVED:
            self.resolved_at = self.resolved_at or latest.at
        else:
            self.resolved_at = None
        self.updated_at = timezone.now()
        self.save(update_fields=["state", "resolved_at", "updated_at"])


def in_language(text: str, translations: dict[str, str], language: str) -> str:
    """An automatic text in the reader's language, while it is still the one written automatically.

    Automatic incidents are written in every page language, `text` being the LANGUAGE_CODE one, so
    that a Korean page does not tell its readers in English. Once an operator edits the text (it no
    longer equals its LANGUAGE_CODE translation) the operator's words are shown in every language.
    """
    if translations and translations.get(settings.LANGUAGE_CODE) == text:
        return translations.get(language) or text
    return text


class IncidentUpdate(models.Model):
    """One message in an incident's timeline; its state becomes the incident's state."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    state = models.CharField(max_length=20, choices=Incident.State.choices)
    body = models.TextField()
    # An automatic message in every page language; see in_language().
    body_translations = models.JSONField(default=dict, blank=True, editable=False)
    at = models.DateTimeField(default=timezone.now)
    # Set once subscribed channels have been handed this update (alerts claims rows where it is null).
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.state}"

    def body_in(self, language: str) -> str:
        return in_language(self.body, self.body_translations, language)

    def bodies(self) -> dict[str, str]:
        """The message in every page language."""
        return {code: self.body_in(code) for code, _name in settings.LANGUAGES}


class IdempotentRequest(models.Model):
    """The first answer to a POST carrying an Idempotency-Key, returned again when the client retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # What was asked (method, path and body, hashed): the same key for another request is refused.
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_answer_per_idempotency_key")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
