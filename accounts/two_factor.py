"""Two-factor sign-in to the admin: the gate in front of it, and why a code was refused.

The admin's own login form checks the password (whatever guards it, lockout included); a user who
passed it but has not given a second factor in this session reaches only the two-factor pages under
/admin/2fa/ (and can sign out), and counts as anonymous everywhere else (the API through a session).
API tokens are a credential of their own and are not affected.
"""

from __future__ import annotations

import enum
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from monitoring.dual_mode import DualModeMiddleware

# How far back a code is recognised as one that has expired rather than a wrong one (steps of 30 s).
EXPIRED_STEPS = 20
RECOVERY_CODES = 10


class Refusal(enum.StrEnum):
    WRONG = "wrong"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    THROTTLED = "throttled"


def _open_paths() -> tuple[str, ...]:
    return (reverse("admin:logout"), reverse("admin:login"))


def _is_two_factor_page(path: str) -> bool:
    # The code and enroll pages, and the passkey ceremonies (django_otp_webauthn's, under the same prefix).
    return path.startswith(reverse("two-factor-verify").removesuffix("verify/")) or path in _open_paths()


def _gate(request: HttpRequest, user) -> HttpResponseRedirect | None:
    if not user.is_authenticated or user.is_verified():
        return None
    if request.path.startswith(reverse("admin:index")):
        if _is_two_factor_page(request.path):
            return None
        return HttpResponseRedirect(f"{reverse('two-factor-verify')}?{urlencode({'next': request.get_full_path()})}")
    # Half signed in is not signed in: the rest of the site (the API by session) sees an anonymous visitor.
    anonymous = AnonymousUser()
    request.user = anonymous

    async def auser():
        return anonymous

    request.auser = auser
    return None


class TwoFactorMiddleware(DualModeMiddleware):
    """After django_otp's OTPMiddleware; does nothing unless REQUIRE_2FA is on, nor for requests without a session."""

    def _applies(self, request: HttpRequest) -> bool:
        return settings.REQUIRE_2FA and settings.SESSION_COOKIE_NAME in request.COOKIES

    def __call__(self, request: HttpRequest):
        if self.async_mode:
            return self._call_async(request)
        if self._applies(request) and (redirect := _gate(request, request.user)):
            return redirect
        return self.get_response(request)

    async def _call_async(self, request: HttpRequest):
        if self._applies(request) and (redirect := _gate(request, await request.auser())):
            return redirect
        return await self.get_response(request)


def check_totp(device: TOTPDevice, code: str) -> Refusal | None:
    """None when the device takes the code (it is then used up); otherwise why not.

    The device counts every refusal towards its throttle (1 s, 2 s, 4 s ... between attempts).
    """
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return Refusal.THROTTLED
    if device.verify_token(code):
        return None
    try:
        token = int(code)
    except ValueError:
        return Refusal.WRONG
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    now = time.time()
    for steps_back in range(-device.tolerance, EXPIRED_STEPS + 1):
        totp.time = now - steps_back * device.step
        if totp.token() == token:
            # A code of a step already accepted is a replay; an older one has expired.
            return Refusal.REPLAYED if totp.t() <= device.last_t else Refusal.EXPIRED
    return Refusal.WRONG


def check_recovery_code(user, code: str) -> StaticDevice | None:
    """The recovery-code device that took this code (each code works once), or None."""
    for device in StaticDevice.objects.devices_for_user(user, confirmed=True):
        allowed, _ = device.verify_is_allowed()
        if allowed and device.verify_token(code.replace(" ", "").lower()):
            return device
    return None


def issue_recovery_codes(user) -> list[str]:
    """New recovery codes, replacing any earlier ones; shown to the user once."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes
