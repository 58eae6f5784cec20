"""From the event log to notifications: per channel, alerts, recoveries, reminders, flapping notices.

One planner runs at a time (it holds the "alerts" cursor); the notifications it writes and the
cursor's move commit together. What each channel has been told about each model is kept in
AlertState, so a restart neither repeats an alert nor forgets a recovery.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone

from alerts.cursor import locked_cursor
from alerts.models import AlertState, Channel, Notification
from alerts.rules import Rule, active_rules, is_bad
from monitoring.incident_data import incident_data
from monitoring.models import AIModel, Incident, IncidentUpdate, Maintenance, ModelStatus, StatusChange
from monitoring.status import Status

CURSOR = "alerts"
BATCH = 500
MAX_BATCHES = 20


def model_data(model: AIModel) -> dict:
    return {
        "id": model.pk,
        "name": model.name,
        "slug": model.slug,
        "provider": model.provider.slug,
        "provider_name": model.provider.name,
        "public_slug": model.public_slug,
    }


def change_data(change: StatusChange) -> dict:
    return {
        "change_id": change.pk,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "at": change.at.isoformat(),
        "reason": change.reason,
        "source": change.source,
        "manual": change.manual,
    }


def flap_window() -> timedelta:
    return timedelta(minutes=settings.ALERT_FLAP_MINUTES)


class Planner:
    """One run's decisions: changes are taken in sequence, then what the clock has made due."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.rules = active_rules()
        self.rule_of = {rule.channel.pk: rule for rule in self.rules}
        self.states: dict[tuple[int, int], AlertState] = {}
        self.notifications: list[Notification] = []
        self._flapping: dict[int, int] = {}
        self._maintenance: dict[tuple[int, datetime], bool] = {}

    # -- state --------------------------------------------------------------------------------

    def state(self, channel: Channel, model: AIModel) -> AlertState:
        key = (channel.pk, model.pk)
        if key not in self.states:
            found = (
                AlertState.objects.filter(channel=channel, model=model)
                .select_related("pending_change__model__provider")
                .first()
            )
            self.states[key] = found or AlertState(channel=channel, model=model)
        return self.states[key]

    def save_states(self) -> None:
        for state in self.states.values():
            untouched = not (state.notified_status or state.pending_change_id or state.flapping_since)
            if state.pk or not untouched:
                state.save()
        # on_clock reads states afresh from the database; these copies must not be saved over them.
        self.states.clear()

    # -- facts about a change -----------------------------------------------------------------

    def flap_count(self, change: StatusChange) -> int:
        """Changes of the model's known status within the flap window ending at this one.

        A pause in evidence (`unknown`: our collectors stopped, a database away) is not the model
        flapping: an outage, a gap and the recovery after it are two changes, not four.
        """
        if change.pk not in self._flapping:
            statuses = StatusChange.objects.filter(
                model_id=change.model_id, id__lte=change.pk, at__gt=change.at - flap_window()
            ).order_by("id")
            known = [s for s in statuses.values_list("to_status", flat=True) if s != Status.UNKNOWN]
            self._flapping[change.pk] = sum(1 for i, s in enumerate(known) if i == 0 or s != known[i - 1])
        return self._flapping[change.pk]

    def in_maintenance(self, model_id: int, at: datetime) -> bool:
        key = (model_id, at)
        if key not in self._maintenance:
            self._maintenance[key] = model_id in Maintenance.active_model_ids(at, [model_id])
        return self._maintenance[key]

    # -- notifications ------------------------------------------------------------------------

    def emit(self, rule: Rule, kind: str, key: str, payload: dict, *, model=None, change=None) -> None:
        self.notifications.append(
            Notification(
                channel=rule.channel,
                kind=kind,
                model=model,
                change=change,
                payload=payload,
                dedupe_key=key,
                next_attempt_at=self.now,
                created_at=self.now,
            )
        )

    def alert(self, rule: Rule, state: AlertState, change: StatusChange) -> None:
        if not state.notified_status:
            state.down_since = change.at
        state.notified_status = change.to_status
        state.next_reminder_at = self.now + rule.remind_every if rule.remind_every else None
        payload = {"model": model_data(change.model), **change_data(change)}
        self.emit(rule, Notification.Kind.ALERT, f"alert:{change.pk}", payload, model=change.model, change=change)

    def recovery(self, rule: Rule, state: AlertState, change: StatusChange) -> None:
        down_since = state.down_since or change.at
        payload = {
            "model": model_data(change.model),
            **change_data(change),
            # Receivers were told about this status; the change itself may come from `unknown`.
            "from_status": state.notified_status,
            "down_since": down_since.isoformat(),
            "duration_seconds": max(0, int((change.at - down_since).total_seconds())),
        }
        state.notified_status, state.down_since, state.next_reminder_at = "", None, None
        if Channel.Event.RECOVERY in rule.events:
            key = f"recovery:{change.pk}"
            self.emit(rule, Notification.Kind.RECOVERY, key, payload, model=change.model, change=change)

    def settle_pending(self, rule: Rule, state: AlertState, until: datetime) -> None:
        """A transition waiting for the minimum duration: confirmed if it held until `until`, else dropped."""
        if state.pending_due_at is None:
            return
        pending = state.pending_change  # None when the change was deleted with its model's history
        if pending is not None and state.pending_due_at <= until:
            self.alert(rule, state, pending)
        state.pending_change, state.pending_due_at = None, None

    # -- the two entry points -----------------------------------------------------------------

    def on_change(self, change: StatusChange) -> None:
        model = change.model
        for rule in self.rules:
            if not rule.covers(model):
                continue
            state = self.state(rule.channel, model)
            self.settle_pending(rule, state, until=change.at)
            if state.flapping_since:
                continue  # held until the model settles (see on_clock)
            alerting = rule.alerts_on(change.to_status) and change.to_status != state.notified_status
            ending = rule.ends_alert(state.notified_status, change.to_status)
            if not (alerting or ending):
                continue
            if alerting and rule.channel.silence_during_maintenance and self.in_maintenance(model.pk, change.at):
                continue
            if self.flap_count(change) >= settings.ALERT_FLAP_CHANGES:
                state.flapping_since = change.at
                payload = {
                    "model": model_data(model),
                    **change_data(change),
                    "flap": {"changes": self.flap_count(change), "minutes": settings.ALERT_FLAP_MINUTES},
                }
                self.emit(rule, Notification.Kind.FLAPPING, f"flapping:{change.pk}", payload, model=model)
                continue
            if ending:
                self.recovery(rule, state, change)
            elif rule.min_duration:
                state.pending_change, state.pending_due_at = change, change.at + rule.min_duration
            else:
                self.alert(rule, state, change)

    def on_clock(self) -> None:
        """What time alone decides: confirmed pending alerts, reminders, the end of flapping."""
        self.save_states()
        states = AlertState.objects.filter(channel_id__in=list(self.rule_of)).select_related(
            "pending_change__model__provider", "model__provider"
        )
        for state in states.filter(pending_due_at__lte=self.now):
            # A later change inside the waiting time that this run has not seen yet: decide next run.
            if (
                state.pending_change_id
                and StatusChange.objects.filter(
                    model_id=state.model_id, id__gt=state.pending_change_id, at__lt=state.pending_due_at
                ).exists()
            ):
                continue
            self.settle_pending(self.rule_of[state.channel_id], state, until=self.now)
            state.save()
        for state in states.filter(flapping_since__isnull=False):
            self.end_flapping(self.rule_of[state.channel_id], state)
        for state in states.exclude(notified_status="").filter(
            next_reminder_at__lte=self.now, flapping_since__isnull=True
        ):
            self.remind(self.rule_of[state.channel_id], state)

    def end_flapping(self, rule: Rule, state: AlertState) -> None:
        last = StatusChange.objects.filter(model_id=state.model_id).select_related("model__provider").last()
        if last is not None and last.at > self.now - flap_window():
            return
        state.flapping_since = None
        if last is None:
            state.save()
            return
        if rule.alerts_on(last.to_status) and last.to_status != state.notified_status:
            self.alert(rule, state, last)
        elif rule.ends_alert(state.notified_status, last.to_status):
            self.recovery(rule, state, last)
        else:
            payload = {
                "model": model_data(last.model),
                **change_data(last),
                "status": last.to_status,
                "flap": {"minutes": settings.ALERT_FLAP_MINUTES},
            }
            self.emit(rule, Notification.Kind.SETTLED, f"settled:{last.pk}", payload, model=last.model)
        state.save()

    def remind(self, rule: Rule, state: AlertState) -> None:
        every = rule.remind_every
        due = state.next_reminder_at
        state.next_reminder_at = self.now + every if every else None
        status = ModelStatus.objects.filter(model_id=state.model_id).values_list("status", flat=True).first()
        held = rule.channel.silence_during_maintenance and self.in_maintenance(state.model_id, self.now)
        if every and status and is_bad(status) and not held:
            down_since = state.down_since or due
            payload = {
                "model": model_data(state.model),
                "status": status,
                "at": self.now.isoformat(),
                "down_since": down_since.isoformat(),
                "duration_seconds": int((self.now - down_since).total_seconds()),
            }
            key = f"reminder:{state.pk}:{int(due.timestamp())}"
            self.emit(rule, Notification.Kind.REMINDER, key, payload, model=state.model)
        state.save()

    def flush(self) -> int:
        self.save_states()
        Notification.objects.bulk_create(self.notifications, ignore_conflicts=True)
        return len(self.notifications)


def plan(now: datetime | None = None) -> int:
    """Process new status changes and what is due by the clock. Returns the notifications written."""
    now = now or timezone.now()
    with locked_cursor(CURSOR, now) as cursor:
        if cursor is None:
            return 0
        planner = Planner(now)
        for _ in range(MAX_BATCHES):
            changes = cursor.next_batch(BATCH)
            for change in changes:
                planner.on_change(change)
            if len(changes) < BATCH:
                break
        planner.on_clock()
        written = planner.flush()
    return written + plan_incident_updates(now)


def incident_payload(update: IncidentUpdate) -> dict:
    """The incident as of one update, for operators' channels: private models named, times as ISO text."""
    incident = update.incident
    with_provider = AIModel.objects.select_related("provider")
    prefetch_related_objects([incident], Prefetch("models_affected", queryset=with_provider))
    data = incident_data(incident, [update], include_private=True)
    data["update"] = data.pop("updates")[0]
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def plan_incident_updates(now: datetime | None = None, limit: int = 100) -> int:
    """Hand each new incident update to the channels subscribed to incidents, once."""
    now = now or timezone.now()
    ids = list(IncidentUpdate.objects.filter(notified_at__isnull=True).order_by("id").values_list("id", flat=True))
    written = 0
    for update_id in ids[:limit]:
        with transaction.atomic():
            # The claim: whoever sets notified_at first hands this update out.
            if not IncidentUpdate.objects.filter(pk=update_id, notified_at__isnull=True).update(notified_at=now):
                continue
            update = IncidentUpdate.objects.select_related("incident__provider").get(pk=update_id)
            incident: Incident = update.incident
            affected = list(incident.models_affected.select_related("provider"))
            payload = {"incident": incident_payload(update), "at": update.at.isoformat()}
            rules = [r for r in active_rules() if Channel.Event.INCIDENTS in r.events]
            rows = [
                Notification(
                    channel=rule.channel,
                    kind=Notification.Kind.INCIDENT,
                    incident_update=update,
                    payload=payload,
                    dedupe_key=f"incident-update:{update.pk}",
                    next_attempt_at=now,
                    created_at=now,
                )
                for rule in rules
                if rule.covers_incident(incident, affected)
            ]
            Notification.objects.bulk_create(rows, ignore_conflicts=True)
            written += len(rows)
    return written
