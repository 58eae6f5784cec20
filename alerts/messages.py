"""What a notification says, in the channel's language: title, summary, facts and a link to the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from anomalies.models import BurnAlert, Direction, Metric, Sli
from anomalies.slo import WINDOWS
from monitoring.durations import format_duration
from monitoring.models import Incident
from monitoring.status import Status, label_of, status_label


@dataclass(frozen=True)
class Message:
    title: str
    summary: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    # Rendered when the message is built, so in the language active for its channel.
    link_text: str = field(default_factory=lambda: _("Open the status page"))
    # bad, warning, good or info: transports that have colours use it.
    tone: str = "info"
    footer: str = field(default_factory=lambda: _footer())

    def as_text(self) -> str:
        lines = [self.summary, ""] + [f"{label}: {value}" for label, value in self.facts]
        if self.url:
            lines += ["", f"{self.link_text}: {self.url}"]
        return "\n".join(lines).strip()

    def as_markdown(self) -> str:
        lines = [self.summary, ""] + [f"**{label}:** {value}" for label, value in self.facts]
        if self.url:
            lines += ["", f"[{self.link_text}]({self.url})"]
        return "\n".join(lines).strip()


def site_url() -> str:
    return settings.SITE_URL.rstrip("/")


def page_url(language: str, model: dict | None = None) -> str:
    """The public page of a model (or the page itself), in a language."""
    with translation.override(language):
        if model:
            return site_url() + reverse(
                "statuspage-model", kwargs={"provider": model["provider"], "model": model["slug"]}
            )
        return site_url() + reverse("statuspage-index")


def format_time(value: str | datetime | None) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def model_label(model: dict) -> str:
    return f"{model['provider_name']} {model['name']}"


def render(kind: str, payload: dict, language: str) -> Message:
    """The message for a notification of `kind` carrying `payload`, in `language`."""
    with translation.override(language):
        return _RENDERERS[kind](payload, language)


def _status_facts(payload: dict) -> list[tuple[str, str]]:
    facts = [
        (_("Model"), model_label(payload["model"])),
        (_("From"), status_label(payload["from_status"])),
        (_("To"), status_label(payload["to_status"])),
        (_("Since"), format_time(payload["at"])),
    ]
    if payload.get("reason"):
        facts.append((_("Why"), payload["reason"]))
    return facts


def _footer() -> str:
    return getattr(settings, "SITE_NAME", "") or site_url()


def _alert(payload: dict, language: str) -> Message:
    model = model_label(payload["model"])
    to = status_label(payload["to_status"])
    return Message(
        title=_("%(model)s: %(status)s") % {"model": model, "status": to},
        summary=_("%(model)s went from %(from)s to %(to)s at %(at)s.")
        % {"model": model, "from": status_label(payload["from_status"]), "to": to, "at": format_time(payload["at"])},
        facts=_status_facts(payload),
        url=page_url(language, payload["model"]),
        tone="warning" if payload["to_status"] == Status.DEGRADED_PERFORMANCE else "bad",
    )


def _recovery(payload: dict, language: str) -> Message:
    model = model_label(payload["model"])
    to = status_label(payload["to_status"])
    duration = format_duration(payload["duration_seconds"])
    if payload["to_status"] == Status.OPERATIONAL:
        title = _("%(model)s recovered") % {"model": model}
    else:
        title = _("%(model)s: %(status)s") % {"model": model, "status": to}
    facts = [
        (_("Model"), model),
        (_("From"), status_label(payload["from_status"])),
        (_("To"), to),
        (_("Down since"), format_time(payload["down_since"])),
        (_("Recovered at"), format_time(payload["at"])),
        (_("Lasted"), duration),
    ]
    if payload.get("reason"):
        facts.append((_("Why"), payload["reason"]))
    return Message(
        title=title,
        summary=_("%(model)s went from %(from)s to %(to)s at %(at)s. The problem lasted %(duration)s.")
        % {
            "model": model,
            "from": status_label(payload["from_status"]),
            "to": to,
            "at": format_time(payload["at"]),
            "duration": duration,
        },
        facts=facts,
        url=page_url(language, payload["model"]),
        tone="good",
    )


def _reminder(payload: dict, language: str) -> Message:
    model = model_label(payload["model"])
    status = status_label(payload["status"])
    duration = format_duration(payload["duration_seconds"])
    return Message(
        title=_("Reminder: %(model)s: %(status)s") % {"model": model, "status": status},
        summary=_("%(model)s has been in %(status)s for %(duration)s, since %(since)s.")
        % {"model": model, "status": status, "duration": duration, "since": format_time(payload["down_since"])},
        facts=[
            (_("Model"), model),
            (_("Status"), status),
            (_("Down since"), format_time(payload["down_since"])),
            (_("So far"), duration),
        ],
        url=page_url(language, payload["model"]),
        tone="bad",
    )


def _flapping(payload: dict, language: str) -> Message:
    model = model_label(payload["model"])
    flap = payload["flap"]
    return Message(
        title=_("%(model)s is flapping") % {"model": model},
        summary=_(
            "%(model)s changed status %(changes)d times in %(minutes)d minutes. Alerts for it are held "
            "until its status holds for %(minutes)d minutes."
        )
        % {"model": model, "changes": flap["changes"], "minutes": flap["minutes"]},
        facts=[
            (_("Model"), model),
            (_("Status"), status_label(payload["to_status"])),
            (_("Since"), format_time(payload["at"])),
        ],
        url=page_url(language, payload["model"]),
        tone="warning",
    )


def _settled(payload: dict, language: str) -> Message:
    model = model_label(payload["model"])
    status = status_label(payload["status"])
    return Message(
        title=_("%(model)s is stable again") % {"model": model},
        summary=_("%(model)s has held one status for %(minutes)d minutes: %(status)s. Alerts resume.")
        % {"model": model, "minutes": payload["flap"]["minutes"], "status": status},
        facts=[(_("Model"), model), (_("Status"), status), (_("Since"), format_time(payload["at"]))],
        url=page_url(language, payload["model"]),
        tone="good" if payload["status"] == Status.OPERATIONAL else "warning",
    )


def _incident(payload: dict, language: str) -> Message:
    incident = payload["incident"]
    update = incident["update"]
    state = label_of(Incident.State, update["state"])
    facts = [
        (_("State"), state),
        (_("Impact"), label_of(Incident.Impact, incident["impact"])),
        (_("Started"), format_time(incident["started_at"])),
    ]
    if incident["models"]:
        facts.append((_("Affected models"), ", ".join(incident["models"])))
    if incident.get("resolved_at"):
        facts.append((_("Resolved"), format_time(incident["resolved_at"])))
    # Automatic texts come in every page language (payloads written before that carry one).
    title = incident.get("titles", {}).get(language) or incident["title"]
    return Message(
        title=_("%(state)s: %(title)s") % {"state": state, "title": title},
        summary=update.get("bodies", {}).get(language) or update["body"],
        facts=facts,
        url=page_url(language),
        tone="good" if update["state"] == Incident.State.RESOLVED else "bad",
    )


def _anomaly(payload: dict, language: str) -> Message:
    model = model_label(payload["model"])
    anomaly = payload["anomaly"]
    what = f"{label_of(Metric, anomaly['metric'])} {label_of(Direction, anomaly['direction'])}"
    facts = [
        (_("Model"), model),
        (_("What"), what + (f" ({anomaly['region']})" if anomaly.get("region") else "")),
        (_("Started"), format_time(anomaly["started_at"])),
        (_("Expected"), f"{anomaly['expected'][0]:g} – {anomaly['expected'][1]:g}"),
        (_("Seen"), f"{anomaly['observed']:g}"),
    ]
    if payload["state"] == "closed":
        facts.append((_("Ended"), format_time(anomaly["ended_at"])))
        return Message(
            title=_("%(model)s: back to its usual range") % {"model": model},
            summary=_("%(model)s: %(what)s has ended. Its status was not changed by it.")
            % {"model": model, "what": what},
            facts=facts,
            url=page_url(language, payload["model"]),
            tone="good",
        )
    return Message(
        title=_("%(model)s: unusual %(metric)s") % {"model": model, "metric": label_of(Metric, anomaly["metric"])},
        summary=_("%(model)s: %(what)s, outside its own learned normal. This alone does not change its status.")
        % {"model": model, "what": what},
        facts=facts,
        url=page_url(language, payload["model"]),
        tone="warning",
    )


def _objective(burn: dict) -> str:
    if burn["sli"] == Sli.AVAILABILITY:
        return _("availability %(percent)s %%") % {"percent": f"{burn['availability_percent']:g}"}
    return _("95 %% of first tokens under %(ms)d ms") % {"ms": burn["latency_objective_ms"]}


def _window(name: str) -> str:
    """A rule's window ("1h", "5m") as the reader's language writes a duration."""
    span = WINDOWS.get(name)
    return format_duration(span.total_seconds()) if span else name


def _burn_rate(payload: dict, language: str) -> Message:
    model = model_label(payload["model"])
    burn = payload["burn"]
    speed = label_of(BurnAlert.Speed, burn["speed"])
    long, short = _window(burn["long_window"]), _window(burn["short_window"])
    facts = [
        (_("Model"), model),
        (_("Objective"), _objective(burn)),
        (_("Rule"), f"{speed}: {burn['threshold']:g}× ({long} + {short})"),
        (_("Burn rate"), f"{burn['long_burn']:g}× ({long}), {burn['short_burn']:g}× ({short})"),
        (_("Since"), format_time(burn["started_at"])),
    ]
    if burn.get("budget_left") is not None:
        facts.append((_("Error budget left"), f"{burn['budget_left']:.0%}"))
    return Message(
        title=_("%(model)s: error budget burning (%(speed)s, %(sli)s)")
        % {"model": model, "speed": speed, "sli": label_of(Sli, burn["sli"])},
        summary=_(
            "%(model)s is spending its error budget for %(objective)s %(rate)s times faster than it can "
            "sustain over the last %(window)s, and still over the last %(short)s."
        )
        % {
            "model": model,
            "objective": _objective(burn),
            "rate": f"{burn['long_burn']:g}",
            "window": long,
            "short": short,
        },
        facts=facts,
        url=page_url(language, payload["model"]),
        tone="bad" if burn["speed"] == BurnAlert.Speed.FAST else "warning",
    )


def _test(payload: dict, language: str) -> Message:
    return Message(
        title=_("Test notification"),
        summary=_("A test from %(site)s. If you can read this, the channel works.") % {"site": _footer()},
        facts=[(_("Channel"), payload.get("channel", ""))],
        url=page_url(language),
        tone="info",
    )


_RENDERERS = {
    "alert": _alert,
    "recovery": _recovery,
    "reminder": _reminder,
    "flapping": _flapping,
    "settled": _settled,
    "incident": _incident,
    "anomaly": _anomaly,
    "burn_rate": _burn_rate,
    "test": _test,
}
