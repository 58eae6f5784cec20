"""Signing up and confirming: one path for the API and the page form, saying nothing about who is subscribed."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from monitoring.models import AIModel, Provider
from subscriptions.models import Subscriber, SubscriberMessage


class RateLimited(Exception):
    """Too many sign-ups from one IP address; the caller answers 429."""


@dataclass
class Choice:
    """What a visitor asked to follow: nothing listed means the whole page."""

    providers: list[int] = field(default_factory=list)
    models: list[int] = field(default_factory=list)
    language: str = settings.LANGUAGE_CODE

    @property
    def whole_page(self) -> bool:
        return not self.providers and not self.models


def normalized_email(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"email": _("Enter an email address.")})
    address = value.strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError({"email": _("Enter a valid email address.")}) from None
    return address


def choice_of(providers: object, models: object, language: object) -> Choice:
    """The visitor's choice from public slugs (providers: "openai"; models: "openai/gpt-4o")."""
    errors: dict[str, str] = {}
    providers = providers or []
    models = models or []
    if not isinstance(providers, list) or not all(isinstance(p, str) for p in providers):
        errors["providers"] = _("Give a list of provider slugs.")
        providers = []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        errors["models"] = _("Give a list of models as provider/model.")
        models = []
    found_providers = dict(Provider.objects.filter(slug__in=providers).values_list("slug", "pk"))
    unknown = sorted(set(providers) - set(found_providers))
    if unknown:
        errors["providers"] = _("Unknown provider: %(names)s.") % {"names": ", ".join(unknown)}
    pairs = [m.split("/", 1) for m in models if "/" in m]
    found_models: dict[str, int] = {}
    for provider_slug, model_slug in pairs:
        model = AIModel.objects.filter(public=True, provider__slug=provider_slug, slug=model_slug).first()
        if model is not None:
            found_models[f"{provider_slug}/{model_slug}"] = model.pk
    unknown = sorted(set(models) - set(found_models))
    if unknown:
        errors["models"] = _("Unknown model: %(names)s.") % {"names": ", ".join(unknown)}
    codes = [code for code, _name in settings.LANGUAGES]
    if language in (None, ""):
        language = settings.LANGUAGE_CODE
    if language not in codes:
        errors["language"] = _("Choose among: %(choices)s.") % {"choices": ", ".join(codes)}
    if errors:
        raise ValidationError(errors)
    return Choice(sorted(set(found_providers.values())), sorted(set(found_models.values())), language)


def _count_ip(ip: str) -> None:
    key = "subscriptions:ip:" + hashlib.sha256(ip.encode()).hexdigest()[:32]
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    if count > settings.SUBSCRIPTIONS_SIGNUPS_PER_IP_PER_HOUR:
        raise RateLimited()


def request_email_subscription(address: str, choice: Choice, ip: str = "", now: datetime | None = None) -> None:
    """Queue a confirmation mail for `address`; the next subscriptions round (every second) sends it.

    Never sent while the visitor waits: a slow or absent mail server must not hold the request, nor
    tell by its timing which addresses were sent a mail.

    Whether the address was unknown, waiting for confirmation or already subscribed, the caller
    learns nothing: the same mail goes out (its link applies the new choice), within the address's
    daily allowance.
    """
    now = now or timezone.now()
    if ip:
        _count_ip(ip)
    with transaction.atomic():
        subscriber, _created = Subscriber.objects.get_or_create(email=address, defaults={"language": choice.language})
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        sent_today = subscriber.messages.filter(
            kind=SubscriberMessage.Kind.CONFIRMATION, created_at__gt=now - timedelta(days=1)
        ).count()
        if sent_today >= settings.SUBSCRIPTIONS_CONFIRMATIONS_PER_ADDRESS_PER_DAY:
            return
        fields = ["requested_at"]
        subscriber.requested_at = now
        if subscriber.confirmed_at is None:
            subscriber.language = choice.language
            fields.append("language")
        subscriber.save(update_fields=fields)
        SubscriberMessage.objects.create(
            subscriber=subscriber,
            kind=SubscriberMessage.Kind.CONFIRMATION,
            payload=asdict(choice),
            next_attempt_at=now,
            created_at=now,
        )


def request_webhook_subscription(url: object, choice: Choice, ip: str = "", now: datetime | None = None) -> None:
    """Subscribe a webhook endpoint once it has answered the challenge (which hands it its signing secret)."""
    from alerts.outbound import validate_http_url
    from subscriptions.webhooks import challenge

    if ip:
        _count_ip(ip)
    if not isinstance(url, str) or not url.strip():
        raise ValidationError({"webhook": _("Enter a full http(s) URL, for example https://example.com/hooks/status.")})
    url = url.strip()
    try:
        validate_http_url(url)
    except ValidationError as exc:
        raise ValidationError({"webhook": exc.messages}) from None
    follows = {
        "providers": sorted(Provider.objects.filter(pk__in=choice.providers).values_list("slug", flat=True)),
        "models": sorted(
            m.public_slug for m in AIModel.objects.filter(pk__in=choice.models).select_related("provider")
        ),
    }
    secret = challenge(url, follows)  # raises ChallengeFailed
    with transaction.atomic():
        subscriber, _created = Subscriber.objects.get_or_create(
            webhook_url=url, defaults={"channel": Subscriber.Channel.WEBHOOK, "language": choice.language}
        )
        subscriber.secret, subscriber.requested_at = secret, now or timezone.now()
        subscriber.save(update_fields=["secret", "requested_at"])
        confirm(subscriber, asdict(choice), now)


def request_push_subscription(subscription: object, choice: Choice, ip: str = "", now: datetime | None = None) -> None:
    """Subscribe a browser: its permission prompt was the opt-in, so the subscription is active at once."""
    from subscriptions.push import validate

    if ip:
        _count_ip(ip)
    endpoint, keys = validate(subscription)
    with transaction.atomic():
        subscriber, _created = Subscriber.objects.get_or_create(
            push_endpoint=endpoint, defaults={"channel": Subscriber.Channel.PUSH, "language": choice.language}
        )
        subscriber.push_keys, subscriber.requested_at = keys, now or timezone.now()
        subscriber.save(update_fields=["push_keys", "requested_at"])
        confirm(subscriber, asdict(choice), now)


def confirm(subscriber: Subscriber, choice: dict, now: datetime | None = None) -> Subscriber:
    """Apply a confirmed choice: the subscription is active (again) and follows what the link says."""
    now = now or timezone.now()
    providers = Provider.objects.filter(pk__in=choice.get("providers") or [])
    models = AIModel.objects.filter(pk__in=choice.get("models") or [], public=True)
    with transaction.atomic():
        subscriber.whole_page = not choice.get("providers") and not choice.get("models")
        subscriber.language = choice.get("language") or subscriber.language
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.paused_at, subscriber.paused_reason, subscriber.consecutive_failures = None, "", 0
        subscriber.save()
        subscriber.providers.set(providers)
        subscriber.ai_models.set(models)
    return subscriber


def unsubscribe(subscriber: Subscriber) -> None:
    """Forget the address: the row goes, with everything it was still to be sent."""
    subscriber.delete()


def purge_unconfirmed(now: datetime | None = None) -> int:
    """Delete sign-ups nobody confirmed within the confirmation window."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.SUBSCRIPTIONS_CONFIRM_HOURS)
    _total, by_model = Subscriber.objects.filter(confirmed_at__isnull=True, requested_at__lt=cutoff).delete()
    return by_model.get(Subscriber._meta.label, 0)
