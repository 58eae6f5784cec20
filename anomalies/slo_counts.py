"""Good and bad events per model and minute, counted from the check results, and folded into hours.

Availability: an answered probe is good; a provider fault, a timeout or a broken stream is bad. Latency:
an answered probe whose time to first token is under the model's objective is good, one at or over it
is bad; a probe that measures no first token is judged on its total latency against the model's
latency threshold. Probe faults and 429s on our own key count for
neither: they say nothing about the provider; nor do results inside the model's maintenance windows
(one-off or recurring), left out of its uptime too. A minute without results has no row, so a stretch
without evidence is never counted as good (nor as bad); the budget says how much evidence it stands on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Case, Count, F, Q, Sum, When
from django.db.models.functions import Coalesce, TruncHour, TruncMinute

from anomalies.models import SloCount
from collectors.models import CheckResult
from monitoring.models import Maintenance
from monitoring.outcomes import Outcome

FAULTS = [Outcome.PROVIDER_FAULT, Outcome.TIMEOUT, Outcome.BROKEN_STREAM]
COUNTED = [Outcome.OK, *FAULTS]
FIGURES = ("answered", "failed", "fast", "slow")


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return floor_minute(moment).replace(minute=0)


def recount(start: datetime, end: datetime, minutes: int) -> int:
    """Count the results in [start, end) again into buckets of `minutes` (1 or 60), replacing those buckets
    whole. Returns the buckets written."""
    trunc = TruncMinute if minutes == 1 else TruncHour
    answered = Q(outcome=Outcome.OK)
    results = CheckResult.objects.filter(time__gte=start, time__lt=end, outcome__in=COUNTED)
    # Time under maintenance counts neither for nor against the model, as in its uptime.
    for ids, starts_at, ends_at in Maintenance.covered(start, end):
        results = results.exclude(model_id__in=ids, time__gte=starts_at, time__lt=ends_at)
    rows = (
        results.annotate(
            # The first token against the latency objective; a probe that measures none (not streamed)
            # on its total latency against the model's latency threshold, not against a TTFT figure.
            timing=Coalesce(F("ttft_ms"), F("latency_ms")),
            objective=Case(
                When(ttft_ms__isnull=True, then=F("model__latency_threshold_ms")),
                default=Coalesce(F("model__slo_ttft_ms"), F("model__ttft_threshold_ms")),
            ),
        )
        .annotate(bucket=trunc("time", tzinfo=UTC))
        .values("model_id", "bucket")
        .annotate(
            answered=Count("time", filter=answered),
            failed=Count("time", filter=Q(outcome__in=FAULTS)),
            fast=Count("time", filter=answered & Q(timing__lt=F("objective"))),
            slow=Count("time", filter=answered & Q(timing__gte=F("objective"))),
        )
        .order_by()
    )
    buckets = [
        SloCount(model_id=r["model_id"], start=r["bucket"], minutes=minutes, **{f: r[f] for f in FIGURES}) for r in rows
    ]
    SloCount.objects.filter(minutes=minutes, start__gte=start, start__lt=end).delete()
    SloCount.objects.bulk_create(buckets, batch_size=2000)
    return len(buckets)


def fold_minutes(before: datetime) -> int:
    """Fold the minute buckets that start before `before` (an hour mark) into hour buckets, adding to an
    hour bucket already there. Returns the hour buckets written."""
    minutes = SloCount.objects.filter(minutes=1, start__lt=before)
    sums = {
        (r["model_id"], r["hour"]): r
        for r in minutes.annotate(hour=TruncHour("start", tzinfo=UTC))
        .values("model_id", "hour")
        .annotate(**{f"{f}_sum": Sum(f) for f in FIGURES})
        .order_by()
    }
    if not sums:
        return 0
    existing = {
        (row.model_id, row.start): row
        for row in SloCount.objects.filter(minutes=60, start__in={hour for _, hour in sums})
        if (row.model_id, row.start) in sums
    }
    new = []
    for key, r in sums.items():
        row = existing.get(key) or SloCount(model_id=key[0], start=key[1], minutes=60)
        for f in FIGURES:
            setattr(row, f, getattr(row, f) + r[f"{f}_sum"])
        if row.pk is None:
            new.append(row)
    SloCount.objects.bulk_update(list(existing.values()), list(FIGURES), batch_size=2000)
    SloCount.objects.bulk_create(new, batch_size=2000)
    minutes.delete()
    return len(sums)


def forget_before(moment: datetime) -> int:
    return SloCount.objects.filter(start__lt=moment).delete()[0]


def window_start(now: datetime, days: int) -> datetime:
    return floor_hour(now) - timedelta(days=days)
