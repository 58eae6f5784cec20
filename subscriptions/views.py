"""The subscription pages: sign up, confirm, manage and unsubscribe (one-click POST), each in the page languages."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from monitoring.client_address import request_address
from subscriptions import push
from subscriptions.forms import SubscribeForm
from subscriptions.signup import (
    RateLimited,
    choice_of,
    confirm,
    normalized_email,
    request_email_subscription,
    unsubscribe,
)
from subscriptions.tokens import BadToken, manage_token, read_confirmation, read_manage


def _bad_link(request: HttpRequest, error: BadToken) -> HttpResponse:
    # A friendly page, never a 500: the link is old, mangled, or its subscription is gone.
    return render(request, "subscriptions/bad_link.html", {"expired": error.expired}, status=400)


@never_cache
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    initial = {"models": request.GET.getlist("model"), "providers": request.GET.getlist("provider")}
    form = SubscribeForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        if form.is_bot:
            return render(request, "subscriptions/check_inbox.html")
        try:
            address = normalized_email(form.cleaned_data["email"])
            choice = choice_of(form.cleaned_data["providers"], form.cleaned_data["models"], get_language())
            request_email_subscription(address, choice, ip=request_address(request))
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, messages)
        except RateLimited:
            return render(request, "subscriptions/subscribe.html", {"form": form, "rate_limited": True}, status=429)
        else:
            return render(request, "subscriptions/check_inbox.html")
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        # Feeds of what the visitor came from (the model page's control names its model).
        "feed_models": [m for m in initial["models"] if m in dict(form.fields["models"].choices)],
        "feed_providers": [p for p in initial["providers"] if p in dict(form.fields["providers"].choices)],
        "vapid_key": push.public_key(),
    }
    return render(request, "subscriptions/subscribe.html", context, status=status)


@never_cache
def confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber, choice = read_confirmation(token)
    except BadToken as error:
        return _bad_link(request, error)
    subscriber = confirm(subscriber, choice)
    context = {"follows": subscriber.follows(), "manage_token": manage_token(subscriber.pk, subscriber.key)}
    return render(request, "subscriptions/confirmed.html", context)


@never_cache
def manage_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber = read_manage(token)
    except BadToken as error:
        return _bad_link(request, error)
    context = {"follows": subscriber.follows(), "token": token, "confirmed": subscriber.confirmed_at is not None}
    return render(request, "subscriptions/manage.html", context)


# Mail clients post one-click unsubscribes (RFC 8058) without a CSRF token; the signed link is the proof.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber = read_manage(token)
    except BadToken as error:
        if request.method == "POST":
            # Unsubscribing twice ends where the first did.
            return render(request, "subscriptions/unsubscribed.html")
        return _bad_link(request, error)
    if request.method == "POST":
        unsubscribe(subscriber)
        return render(request, "subscriptions/unsubscribed.html")
    return render(request, "subscriptions/unsubscribe.html", {"token": token})
