"""What a channel's rule covers (providers, models, kinds) and what a transition means to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from alerts.models import Channel
from monitoring.models import AIModel, Incident
from monitoring.status import SEVERITY, Status

OUTAGE_STATUSES = frozenset({Status.PARTIAL_OUTAGE, Status.MAJOR_OUTAGE})
OUTAGE, DEGRADED, OK = "outage", "degraded", "ok"


def category(status: str) -> str | None:
    """outage, degraded or ok; None for statuses that say nothing about the model (unknown, maintenance)."""
    if status in OUTAGE_STATUSES:
        return OUTAGE
    if status == Status.DEGRADED_PERFORMANCE:
        return DEGRADED
    if status == Status.OPERATIONAL:
        return OK
    return None


def is_bad(status: str) -> bool:
    return category(status) in (OUTAGE, DEGRADED)


@dataclass(frozen=True)
class Rule:
    channel: Channel
    providers: frozenset[int]
    models: frozenset[int]
    kinds: frozenset[str]
    events: frozenset[str]

    @classmethod
    def of(cls, channel: Channel) -> Rule:
        return cls(
            channel=channel,
            providers=frozenset(p.pk for p in channel.providers.all()),
            models=frozenset(m.pk for m in channel.ai_models.all()),
            kinds=frozenset(channel.model_kinds or []),
            events=frozenset(channel.events or []),
        )

    @property
    def min_duration(self) -> timedelta:
        return timedelta(seconds=self.channel.min_duration_seconds)

    @property
    def remind_every(self) -> timedelta | None:
        minutes = self.channel.remind_every_minutes
        return timedelta(minutes=minutes) if minutes else None

    @property
    def filtered(self) -> bool:
        return bool(self.providers or self.models or self.kinds)

    def covers(self, model: AIModel) -> bool:
        """Listed models always; otherwise the provider and kind filters that are set must both pass."""
        if model.pk in self.models:
            return True
        if not self.providers and not self.kinds:
            return not self.models
        return (not self.providers or model.provider_id in self.providers) and (
            not self.kinds or model.kind in self.kinds
        )

    def covers_incident(self, incident: Incident, affected: list[AIModel]) -> bool:
        if not self.filtered:
            return True
        if incident.provider_id and incident.provider_id in self.providers:
            return True
        return any(self.covers(m) for m in affected)

    def alerts_on(self, status: str) -> bool:
        """Whether a transition into `status` is one this channel alerts on."""
        kind = category(status)
        return kind in (OUTAGE, DEGRADED) and kind in self.events

    def ends_alert(self, notified: str, status: str) -> bool:
        """Whether moving from the alerted `notified` status to `status` ends what the channel was told."""
        kind = category(status)
        if not notified or kind is None:
            return False
        return kind == OK or (not self.alerts_on(status) and SEVERITY[status] < SEVERITY[notified])


def active_rules() -> list[Rule]:
    channels = Channel.objects.filter(enabled=True).prefetch_related("providers", "ai_models")
    return [Rule.of(channel) for channel in channels]
