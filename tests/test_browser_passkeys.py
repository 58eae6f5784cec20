"""Passkeys in a real browser: Chromium's virtual authenticator (DevTools WebAuthn domain) against uvicorn."""

import os
import time
from pathlib import Path

import pytest
from django.db import connections
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from audit.models import AuditEntry
from tests.conftest import user_with_role
from tests.servers import free_port, serve
from tests.test_browser_statuspage import CHROMIUM, CHROMIUM_ARGS

PASSWORD = "pw-ada-correct-1"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def code_for(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def sign_in_with_password(page, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/2fa/verify/**")


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.2)


def test_a_passkey_added_after_a_code_then_signs_in_instead_of_one(tmp_path):
    from playwright.sync_api import sync_playwright

    ada = user_with_role("ada", "admin", password=PASSWORD)
    authenticator_app = TOTPDevice.objects.create(user=ada, name="phone", confirmed=True)
    port = free_port()
    base = f"http://localhost:{port}"  # passkeys need a host name: browsers refuse them on an IP address
    environment = {"REQUIRE_2FA": "1", "WEBAUTHN_RP_ID": "localhost", "WEBAUTHN_ORIGINS": base}
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # see tests/test_browser_statuspage.py
    try:
        with serve(tmp_path / "uvicorn.log", port=port, **environment), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(locale="en-US")
            page = context.new_page()
            devtools = context.new_cdp_session(page)
            devtools.send("WebAuthn.enable")
            options = {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
            devtools.send("WebAuthn.addVirtualAuthenticator", {"options": options})

            sign_in_with_password(page, base)
            assert page.locator("#passkey-verification-button").count() == 0  # none yet
            page.fill("#id_code", code_for(authenticator_app))
            page.click("input[type=submit][value=Verify]")
            page.wait_for_url(f"{base}/admin/")

            page.goto(f"{base}/admin/2fa/passkey/")
            page.click("#passkey-register-button")
            wait_for(lambda: WebAuthnCredential.objects.filter(user=ada, confirmed=True).exists())
            # Queried from inside Playwright's loop: its connection is its own, closed here or it outlives the test.
            connections.close_all()

            page.goto(f"{base}/admin/")
            page.click("#logout-form button")
            page.wait_for_url("**/admin/logout/**")
            sign_in_with_password(page, base)
            page.click("#passkey-verification-button")
            page.wait_for_url(f"{base}/admin/")
            assert "Site administration" in page.content()
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
    (added,) = AuditEntry.objects.filter(action="created", target__startswith="passkey")
    assert added.actor_name == "ada" and added.target.endswith("of ada")
