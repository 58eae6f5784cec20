"""Every other service (Discord, Teams, Telegram, PagerDuty, ntfy, ...) through Apprise URLs."""

from __future__ import annotations

import apprise
from django.utils.translation import gettext as _

from alerts import outbound
from alerts.transports import Delivered, DeliveryFailed, Envelope, InvalidDestination

NOTIFY_TYPES = {
    "bad": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "good": apprise.NotifyType.SUCCESS,
    "info": apprise.NotifyType.INFO,
}


def _last_log_line(logs: str) -> str:
    lines = [line.split(" - ", 2)[-1] for line in logs.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _plugin(url: str):
    with apprise.LogCapture(level=apprise.logging.WARNING) as logs:
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        detail = _last_log_line(logs.getvalue())
        raise InvalidDestination(
            _("Apprise does not recognise this URL (%(detail)s). See https://github.com/caronc/apprise/wiki.")
            % {"detail": detail or _("unsupported or incomplete")}
        )
    return plugin


def _host(plugin) -> str:
    host = getattr(plugin, "host", None)
    return host if isinstance(host, str) else ""


def validate(url: str) -> None:
    plugin = _plugin(url)
    # Self-hosted services (json://, ntfy://, gotify://, ...) take a host: the same rule as webhooks.
    # For hosted services the "host" is an id or token, which never looks like an address.
    try:
        outbound.check_host(_host(plugin))
    except outbound.UnsafeDestination as exc:
        raise InvalidDestination(str(exc)) from None


def mask(url: str) -> str:
    try:
        return _plugin(url).url(privacy=True)
    except InvalidDestination:
        return url.split("://", 1)[0] + "://…"


def send(channel, envelope: Envelope) -> Delivered:
    try:
        plugin = _plugin(channel.url)
        host = _host(plugin)
        outbound.check_host(host)
        if "." in host and not outbound.allowed_host(host):
            try:
                outbound.resolve(host, getattr(plugin, "port", None) or 443)
            except outbound.RequestFailed:
                pass  # a name that does not resolve here: Apprise reports the failure itself
    except (InvalidDestination, outbound.UnsafeDestination) as exc:
        raise DeliveryFailed(str(exc)) from None
    message = envelope.message
    sender = apprise.Apprise()
    sender.add(plugin)
    with apprise.LogCapture(level=apprise.logging.WARNING) as logs:
        ok = sender.notify(
            title=message.title,
            body=message.as_markdown(),
            body_format=apprise.NotifyFormat.MARKDOWN,
            notify_type=NOTIFY_TYPES.get(message.tone, apprise.NotifyType.INFO),
        )
    if not ok:
        raise DeliveryFailed(_last_log_line(logs.getvalue()) or "Apprise could not deliver the notification")
    return Delivered()
