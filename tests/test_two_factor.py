"""Two-factor sign-in to the admin (REQUIRE_2FA on): enrolling, TOTP codes, replays, recovery codes, the reset."""

import json
import re
import time
from base64 import b32encode

import pytest
from django.core.management import call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.two_factor import issue_recovery_codes
from audit.models import AuditEntry
from tests.conftest import user_with_role

PASSWORD = "pw-ada-correct-1"


@pytest.fixture(autouse=True)
def required(settings):
    settings.REQUIRE_2FA = True


@pytest.fixture
def ada(db):
    return user_with_role("ada", "admin", password=PASSWORD)


def code_for(device: TOTPDevice, seconds_ago: float = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() - seconds_ago
    return f"{totp.token():0{device.digits}d}"


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def sign_in(client, username: str = "ada", password: str = PASSWORD):
    """The admin's own login form, then where it leads."""
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, follow=True)


def give_code(client, code: str):
    return client.post("/admin/2fa/verify/", {"code": code, "next": "/admin/"}, follow=True)


def test_a_user_without_a_device_is_led_to_enroll_before_reaching_the_admin(client, ada):
    page = sign_in(client)
    assert page.redirect_chain[-1][0].startswith("/admin/2fa/enroll/")
    html = page.content.decode()
    assert "<svg" in html and "two-factor-secret" in html
    assert client.get("/admin/monitoring/aimodel/").status_code == 302  # not yet

    device = TOTPDevice.objects.get(user=ada, confirmed=False)
    shown_key = re.search(r'class="two-factor-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    assert shown_key == b32encode(device.bin_key).decode()
    done = client.post("/admin/2fa/enroll/", {"code": code_for(device), "next": "/admin/"})
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/monitoring/aimodel/").status_code == 200


def test_sign_in_with_a_real_totp_code_and_a_replay_is_refused(client, ada):
    device = enrolled(ada)
    page = sign_in(client)
    assert page.redirect_chain[-1][0].startswith("/admin/2fa/verify/")
    assert client.get("/admin/").status_code == 302
    code = code_for(device)
    assert give_code(client, code).redirect_chain[-1][0] == "/admin/"
    assert client.get("/admin/").status_code == 200

    client.post("/admin/logout/")
    sign_in(client)
    replayed = give_code(client, code)
    assert "That code was already used" in replayed.content.decode()
    assert client.get("/admin/").status_code == 302
    refused = AuditEntry.objects.get(action="two_factor_failed")
    assert refused.actor == ada and refused.changes == {"reason": [None, "replayed"]}


def test_a_wrong_code_and_an_expired_code_each_get_their_message(client, ada, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 600  # the pause after a wrong code outlasts any slow machine
    device = enrolled(ada)
    sign_in(client)
    wrong = f"{(int(code_for(device)) + 1) % 10**6:06d}"
    assert "That code is not right" in give_code(client, wrong).content.decode()
    # The device now asks for a pause before the next try, and says so.
    assert "Too many wrong codes" in give_code(client, code_for(device)).content.decode()

    bob = user_with_role("bob", "operator", password=PASSWORD)
    late = enrolled(bob)
    client.post("/admin/logout/")
    sign_in(client, "bob")
    assert "That code has expired" in give_code(client, code_for(late, seconds_ago=300)).content.decode()
    assert client.get("/admin/").status_code == 302


def test_a_recovery_code_works_once(client, ada):
    device = enrolled(ada)
    sign_in(client)
    page = client.get("/admin/2fa/verify/")
    assert page.status_code == 200
    # Enroll anew is refused once a device exists: a password alone never adds one.
    assert client.get("/admin/2fa/enroll/").url.startswith("/admin/2fa/verify/")
    first, *_ = issue_recovery_codes(ada)
    assert give_code(client, first).redirect_chain[-1][0] == "/admin/"
    assert client.get("/admin/").status_code == 200
    client.post("/admin/logout/")
    sign_in(client)
    again = give_code(client, first)
    assert "That recovery code is not right, or was already used" in again.content.decode()
    assert client.get("/admin/").status_code == 302
    assert TOTPDevice.objects.filter(pk=device.pk).exists()  # the authenticator is untouched


def test_half_signed_in_is_anonymous_to_the_api(client, ada, anon_api):
    enrolled(ada)
    sign_in(client)
    for path in ("/api/v1/incidents/", "/api/v1/audit/"):
        assert client.get(path).status_code == anon_api.get(path).status_code == 401


def test_no_step_reveals_whether_a_user_exists(client, ada):
    unknown = sign_in(client, "nobody", "pw-whatever-1").content.decode()
    wrong = sign_in(client, "ada", "pw-whatever-1").content.decode()
    message = "Please enter the correct username and password"
    assert message in unknown and message in wrong
    # The two-factor pages ask for the password step first, for anyone.
    assert client.get("/admin/2fa/verify/").url.startswith("/admin/login/")
    assert client.get("/admin/2fa/enroll/").url.startswith("/admin/login/")


def test_reset_2fa_removes_the_devices_and_the_user_enrolls_again(client, ada, capsys):
    enrolled(ada)
    issue_recovery_codes(ada)
    call_command("reset_2fa", "ada")
    assert "ada: 2 two-factor device(s) removed." in capsys.readouterr().out
    assert not TOTPDevice.objects.filter(user=ada).exists() and not StaticDevice.objects.filter(user=ada).exists()
    removals = AuditEntry.objects.filter(action="deleted", target__endswith="of ada")
    assert removals.count() == 2 and all(e.actor_name.endswith("(manage.py)") for e in removals)
    assert sign_in(client).redirect_chain[-1][0].startswith("/admin/2fa/enroll/")


def test_with_two_factor_off_the_password_alone_signs_in(client, ada, settings):
    settings.REQUIRE_2FA = False
    assert sign_in(client).redirect_chain[-1][0] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    "language, text",
    [("ko", "2단계 인증이 필요합니다"), ("ja", "2 段階認証が必要です"), ("en", "Two-factor sign-in is required")],
)
def test_the_enroll_page_speaks_the_operators_language(client, ada, language, text):
    client.post("/admin/login/", {"username": "ada", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE=language)
    assert text in client.get("/admin/2fa/enroll/", HTTP_ACCEPT_LANGUAGE=language).content.decode()


def test_a_passkey_is_added_only_after_a_second_factor(client, ada):
    device = enrolled(ada)
    sign_in(client)
    assert client.get("/admin/2fa/passkey/").url.startswith("/admin/2fa/verify/")
    begin = client.post("/admin/2fa/passkeys/registration/begin/")
    assert begin.status_code == 403
    give_code(client, code_for(device))
    page = client.get("/admin/2fa/passkey/")
    assert page.status_code == 200 and 'id="passkey-register-button"' in page.content.decode()
    assert client.post("/admin/2fa/passkeys/registration/begin/").status_code == 200


@pytest.mark.parametrize("language, text", [("ko", "패스키 등록"), ("ja", "パスキーを登録")])
def test_the_passkey_ceremonys_messages_speak_the_operators_language(client, language, text):
    # The passkey scripts read their messages from this catalog; the library ships none in Korean or Japanese.
    catalog = client.get("/admin/2fa/passkeys/jsi18n/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert json.dumps(text)[1:-1] in catalog  # the catalog writes non-ASCII as \u escapes
