"""Email through Django's email backend: a subject, a text part and an HTML part, from templates."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from alerts.transports import Delivered, DeliveryFailed, Envelope, InvalidDestination


def addresses(url: str) -> list[str]:
    """The addresses of `mailto:a@example.com,b@example.com`."""
    if not url.lower().startswith("mailto:"):
        raise InvalidDestination(_("Give addresses as mailto:ops@example.com (comma-separated for several)."))
    found = [a.strip() for a in url[len("mailto:") :].split("?", 1)[0].split(",") if a.strip()]
    if not found:
        raise InvalidDestination(_("Give at least one address after mailto:."))
    for address in found:
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidDestination(_("%(address)s is not an email address.") % {"address": address}) from None
    return found


def validate(url: str) -> None:
    addresses(url)


def mask(url: str) -> str:
    return url


def send(channel, envelope: Envelope) -> Delivered:
    message = envelope.message
    context = {"message": message, "kind": envelope.kind, "language": envelope.language}
    with translation.override(envelope.language):
        subject = " ".join(render_to_string("alerts/email/subject.txt", context).split())
        text = render_to_string("alerts/email/body.txt", context)
        html = render_to_string("alerts/email/body.html", context)
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "localhost"
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=addresses(channel.url),
        # The same Message-ID on every retry, so that a mail system can drop a duplicate.
        headers={"Message-ID": f"<{envelope.message_id}@{domain}>", "X-Status-Event": envelope.kind},
        connection=get_connection(fail_silently=False, timeout=settings.ALERT_TIMEOUT_SECONDS),
    )
    email.attach_alternative(html, "text/html")
    try:
        email.send()
    except Exception as exc:  # any backend's failure is a failed delivery, retried like the others
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    return Delivered()
