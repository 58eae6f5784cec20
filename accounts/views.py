"""The two-factor pages of the admin: give a code (or a recovery code), or enroll an authenticator first."""

from __future__ import annotations

from base64 import b32encode

import segno
from django import forms
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.signals import two_factor_refused
from accounts.two_factor import Refusal, check_recovery_code, check_totp, issue_recovery_codes

MESSAGES = {
    Refusal.WRONG: _("That code is not right. Enter the code your authenticator shows now."),
    Refusal.EXPIRED: _("That code has expired. Enter the code your authenticator shows now."),
    Refusal.REPLAYED: _("That code was already used. Wait for the next code and enter it."),
    Refusal.THROTTLED: _("Too many wrong codes. Wait a few seconds, then try again."),
}


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}),
        help_text=_("The 6-digit code from your authenticator app, or one of your recovery codes."),
    )


def _next(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return wanted
    return reverse("admin:index")


def _page(request: HttpRequest, template: str, title: str, **context) -> HttpResponse:
    # The admin's look, without its navigation: the user is not fully signed in yet.
    base = {"site_header": admin.site.site_header, "site_title": admin.site.site_title, "has_permission": False}
    return render(request, template, {**base, "title": title, "next": _next(request), **context})


def _confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).first()


def _refuse(request: HttpRequest, reason: Refusal) -> str:
    two_factor_refused.send(sender=TOTPDevice, request=request, user=request.user, reason=str(reason))
    return str(MESSAGES[reason])


@never_cache
@sensitive_post_parameters("code")
def verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if user.is_verified():
        return HttpResponseRedirect(_next(request))
    device = _confirmed_totp(user)
    if device is None:
        return HttpResponseRedirect(f"{reverse('two-factor-enroll')}?{request.GET.urlencode()}")
    form = CodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].strip().replace(" ", "")
        if code.isdigit():
            refusal = check_totp(device, code)
            if refusal is None:
                otp_login(request, device)
                return HttpResponseRedirect(_next(request))
            error = _refuse(request, refusal)
        elif (recovery := check_recovery_code(user, code)) is not None:
            otp_login(request, recovery)
            return HttpResponseRedirect(_next(request))
        else:
            error = gettext("That recovery code is not right, or was already used.")
            two_factor_refused.send(sender=TOTPDevice, request=request, user=user, reason="recovery code")
    has_passkey = WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()
    return _page(
        request, "accounts/verify.html", gettext("Two-factor sign-in"), form=form, error=error, has_passkey=has_passkey
    )


@never_cache
@sensitive_post_parameters("code")
def enroll(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if _confirmed_totp(user) is not None:
        # A second authenticator only after the first one's code: a password alone never adds a device.
        return HttpResponseRedirect(f"{reverse('two-factor-verify')}?{request.GET.urlencode()}")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    form = CodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        refusal = check_totp(device, form.cleaned_data["code"].strip().replace(" ", ""))
        if refusal is None:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            codes = issue_recovery_codes(user)
            return _page(request, "accounts/recovery_codes.html", gettext("Your recovery codes"), codes=codes)
        error = _refuse(request, refusal)
    secret = b32encode(device.bin_key).decode()
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, title=gettext("Authenticator QR code"))
    return _page(
        request,
        "accounts/enroll.html",
        gettext("Set up two-factor sign-in"),
        form=form,
        error=error,
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        qr=mark_safe(qr),  # segno's own SVG of our own URL
    )


@never_cache
def passkey(request: HttpRequest) -> HttpResponse:
    """Add a passkey, once signed in with a second factor (a password alone never adds one)."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not user.is_verified():
        return HttpResponseRedirect(f"{reverse('two-factor-verify')}?next={reverse('two-factor-passkey')}")
    passkeys = WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("created_at")
    return _page(request, "accounts/passkey.html", gettext("Passkeys"), passkeys=passkeys)
