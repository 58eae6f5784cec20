"""Notices of an opt-in event (an anomaly, a burn alert) to the channels whose rules cover its model, damped
like status flips: the ALERT_FLAP_CHANGES-th opening within ALERT_FLAP_MINUTES becomes one "flapping" notice,
and later ones are held until openings fall under that rate again. Channels that stay silent during
maintenance are left out while the model is in a window."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from alerts.models import Notification
from alerts.rules import Rule
from monitoring.models import AIModel, Maintenance


def damped_notices(
    model: AIModel,
    covering: list[Rule],
    *,
    openings: int,
    kind: str,
    key: str,
    payload: dict,
    at: datetime,
    now: datetime,
    hold_at_limit: bool = False,
) -> list[Notification]:
    """`openings`: the model's openings within the flap window up to (and with) this event's. `key` names the
    event; the flapping notice's key is `<key's kind>-flapping:<id>`. `hold_at_limit` holds, rather than
    turns into the flapping notice, an event at the limit (an anomaly closing: its opening already told)."""
    limit = settings.ALERT_FLAP_CHANGES
    if openings > limit or (openings == limit and hold_at_limit):
        return []  # held: the model is flapping, and its channels were told so once
    if openings == limit:
        prefix, _, identity = key.partition(":")
        kind, key = Notification.Kind.FLAPPING, f"{prefix}-flapping:{identity}"
        flap = {"changes": openings, "minutes": settings.ALERT_FLAP_MINUTES}
        payload = {**payload, "to_status": model.status_row.status, "flap": flap}
    in_maintenance = model.pk in Maintenance.active_model_ids(at, [model.pk])
    return [
        Notification(
            channel=rule.channel,
            kind=kind,
            model=model,
            payload=payload,
            dedupe_key=key,
            next_attempt_at=now,
            created_at=now,
        )
        for rule in covering
        if not (rule.channel.silence_during_maintenance and in_maintenance)
    ]
