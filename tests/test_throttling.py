"""Throttling: sign-in lockout per user and address, API rates with 429 and Retry-After, live connects per address."""

import asyncio

import aiohttp
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connections
from django.test import Client

from publishing.realtime.connect_limit import REFUSED_CLOSE_CODE, ConnectLimit
from tests.test_live_updates import ws_events, ws_url

LOGIN = "/admin/login/?next=/admin/"


def sign_in(client: Client, username: str, password: str, address: str = "10.1.2.3", language: str = "en"):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, HTTP_ACCEPT_LANGUAGE=language
    )


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture(autouse=True)
def quick_passwords(settings):
    # Dozens of sign-ins per test: the slow default hasher would only make the suite wait.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fresh_cache():
    cache.clear()  # throttle counters of earlier tests (this worktree's own Redis database)
    yield
    cache.clear()


# Sign-in


def test_after_ten_wrong_passwords_the_right_one_is_refused_too_with_a_lockout_message(staff):
    client = Client()
    for _ in range(9):
        response = sign_in(client, "alice", "wrong")
        assert response.status_code == 200 and "Please enter the correct username and password" in response.text
    tenth = sign_in(client, "alice", "wrong")
    assert tenth.status_code == 429
    right = sign_in(client, "alice", "pw-alice-123")
    assert right.status_code == 429 and right["Retry-After"] == str(settings.LOGIN_LOCKOUT_MINUTES * 60)
    assert "Too many failed sign-in attempts" in right.text
    assert "locked for 15 minutes" in right.text
    assert not signed_in(client)


def test_the_lockout_page_is_the_same_whether_the_user_exists_or_not(staff):
    pages = {}
    for username in ("alice", "nobody-by-that-name"):
        client = Client()
        for _ in range(settings.LOGIN_FAILURE_LIMIT):
            sign_in(client, username, "wrong")
        response = sign_in(client, username, "anything")
        assert response.status_code == 429
        pages[username] = response.text
    assert pages["alice"] == pages["nobody-by-that-name"]
    assert "alice" not in pages["alice"]


@pytest.mark.parametrize(
    "language, words",
    [
        ("ko", "로그인 시도가 너무 많이 실패했습니다"),
        ("ja", "サインインの失敗が多すぎます"),
        ("en", "Too many failed sign-in attempts"),
    ],
)
def test_the_lockout_message_is_translated(staff, language, words):
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT + 1):
        response = sign_in(client, "alice", "wrong", language=language)
    assert response.status_code == 429 and words in response.text


def test_the_lock_holds_one_user_at_one_address_only(staff):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(Client(), "alice", "wrong", address="10.0.0.66")
    assert sign_in(Client(), "alice", "pw-alice-123", address="10.0.0.66").status_code == 429
    other_address = Client()
    assert sign_in(other_address, "alice", "pw-alice-123", address="10.0.0.7").status_code == 302
    assert signed_in(other_address)


def test_axes_reset_username_unlocks_the_user(staff):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(Client(), "alice", "wrong")
    assert sign_in(Client(), "alice", "pw-alice-123").status_code == 429
    call_command("axes_reset_username", "alice", stdout=open("/dev/null", "w"))
    client = Client()
    assert sign_in(client, "alice", "pw-alice-123").status_code == 302
    assert signed_in(client)


def test_a_success_before_the_limit_starts_the_count_again(staff):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        sign_in(Client(), "alice", "wrong")
    assert sign_in(Client(), "alice", "pw-alice-123").status_code == 302
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        sign_in(Client(), "alice", "wrong")
    assert sign_in(Client(), "alice", "pw-alice-123").status_code == 302


def test_test_clients_login_still_works_without_a_request(staff, client):
    assert client.login(username="alice", password="pw-alice-123")
    assert signed_in(client)


# The API


def test_an_anonymous_client_over_its_rate_gets_429_with_retry_after(db, settings, fresh_cache, anon_api):
    settings.API_THROTTLE_ANON = "3/min"
    codes = [anon_api.get("/api/v1/providers/", REMOTE_ADDR="10.9.0.1").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = anon_api.get("/api/v1/providers/", REMOTE_ADDR="10.9.0.1")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
    assert "detail" in refused.json()
    # Another address has its own count.
    assert anon_api.get("/api/v1/providers/", REMOTE_ADDR="10.9.0.2").status_code == 200


def test_a_token_client_has_its_own_rate_per_user(settings, fresh_cache, staff_api):
    settings.API_THROTTLE_ANON = "1/min"
    settings.API_THROTTLE_TOKEN = "5/min"
    codes = [staff_api.get("/api/v1/incidents/").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    assert int(staff_api.get("/api/v1/incidents/")["Retry-After"]) > 0


@pytest.mark.parametrize("value", ["off", ""])
def test_off_or_empty_turns_a_throttle_off(db, settings, fresh_cache, anon_api, value):
    settings.API_THROTTLE_ANON = value
    assert {anon_api.get("/api/v1/providers/").status_code for _ in range(30)} == {200}


def test_a_forwarded_address_is_ignored_unless_proxies_are_trusted(db, settings, fresh_cache, anon_api):
    settings.API_THROTTLE_ANON = "2/min"
    spoofed = [anon_api.get("/api/v1/providers/", HTTP_X_FORWARDED_FOR=f"10.8.0.{i}").status_code for i in range(3)]
    assert spoofed == [200, 200, 429]  # one client, whatever it claims
    settings.TRUSTED_PROXY_COUNT = 1
    via_proxy = [
        anon_api.get("/api/v1/providers/", HTTP_X_FORWARDED_FOR=f"1.2.3.4, 10.7.0.{i}").status_code for i in range(3)
    ]
    assert via_proxy == [200, 200, 200]  # three clients behind one proxy


def test_the_schema_documents_429_with_retry_after(db, anon_api):
    schema = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    listed = schema["paths"]["/api/v1/providers/"]["get"]["responses"]
    assert "Retry-After" in listed["429"]["headers"]
    assert "429" in schema["paths"]["/api/v1/events/"]["get"]["responses"]


# Live connects


def test_connects_over_the_limit_wait_for_the_next_minute():
    now = [120.0]
    limit = ConnectLimit(clock=lambda: now[0])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "WS_CONNECTS_PER_MINUTE", 2)
        assert [limit.admit("10.0.0.1") for _ in range(2)] == [0.0, 0.0]
        now[0] = 150.0
        assert limit.admit("10.0.0.1") == 30.0
        assert limit.admit("10.0.0.2") == 0.0
        now[0] = 180.0
        assert limit.admit("10.0.0.1") == 0.0
        patch.setattr(settings, "WS_CONNECTS_PER_MINUTE", 0)
        assert {limit.admit("10.0.0.1") for _ in range(1000)} == {0.0}


@pytest.mark.django_db(transaction=True)
async def test_live_connects_over_the_limit_are_refused_with_4429_and_sse_with_429(asgi_server, model):
    url = asgi_server(REDIS_URL=settings.REDIS_URL, WS_CONNECTS_PER_MINUTE="3")
    for _ in range(3):
        async with websockets.connect(ws_url(url), origin=url) as ws:
            assert (await ws_events(ws, lambda e: e))[0]["type"] == "hello"
    async with websockets.connect(ws_url(url), origin=url) as refused:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 5)
    assert closed.value.rcvd.code == REFUSED_CLOSE_CODE
    async with aiohttp.ClientSession() as http, http.get(url + "/api/v1/events/") as response:
        assert response.status == 429 and 0 < int(response.headers["Retry-After"]) <= 60
    await sync_to_async(connections.close_all)()
