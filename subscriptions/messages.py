"""What subscribers read, in their language: announcements via alerts' renderers; maintenance and confirmations."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from alerts.messages import Message, format_time, page_url, render, site_url
from monitoring.models import AIModel, Provider


def link(name: str, language: str, token: str) -> str:
    """An absolute link to one of the subscription pages, in a language."""
    with translation.override(language):
        return site_url() + reverse(name, kwargs={"token": token})


def _maintenance(payload: dict, language: str) -> Message:
    window = payload["maintenance"]
    target = window.get("model") or window.get("provider") or ""
    facts = [
        (_("Affects"), target),
        (_("Starts"), format_time(window["starts_at"])),
        (_("Ends"), format_time(window["ends_at"])),
    ]
    if window.get("recurrence"):
        facts.append((_("Repeats"), window["recurrence"]))
    phase = payload["phase"]
    titles = {
        "scheduled": _("Maintenance scheduled: %(title)s"),
        "started": _("Maintenance started: %(title)s"),
        "ended": _("Maintenance ended: %(title)s"),
    }
    return Message(
        title=titles[phase] % {"title": window["title"]},
        summary=window.get("description") or window["title"],
        facts=facts,
        url=page_url(language),
        tone="good" if phase == "ended" else "info",
    )


def announcement_message(kind: str, payload: dict, language: str) -> Message:
    """An announcement in `language`: incidents and status flips read as operators' alerts do."""
    if kind == "maintenance":
        with translation.override(language):
            return _maintenance(payload, language)
    return render("incident" if kind == "incident" else "alert", payload, language)


def choice_text(choice: dict) -> str:
    """What a choice follows, in the active language."""
    if not choice.get("providers") and not choice.get("models"):
        return _("Every model on %(site)s") % {"site": settings.SITE_NAME}
    names = [p.name for p in Provider.objects.filter(pk__in=choice.get("providers") or []).order_by("name")]
    names += [
        f"{m.provider.name} {m.name}"
        for m in AIModel.objects.filter(pk__in=choice.get("models") or []).select_related("provider").order_by("name")
    ]
    return ", ".join(names)


def confirmation_message(choice: dict, language: str, confirm_url: str) -> Message:
    with translation.override(language):
        return Message(
            title=_("Confirm your subscription to %(site)s") % {"site": settings.SITE_NAME},
            summary=_(
                "Someone, probably you, asked to receive status updates at this address. Follow the link to "
                "confirm; it works for %(hours)d hours. If it was not you, ignore this mail and nothing will be sent."
            )
            % {"hours": settings.SUBSCRIPTIONS_CONFIRM_HOURS},
            facts=[(_("Follows"), choice_text(choice))],
            url=confirm_url,
            link_text=_("Confirm the subscription"),
            tone="info",
        )
