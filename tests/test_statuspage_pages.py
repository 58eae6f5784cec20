"""The public pages: one snapshot in Korean, English and Japanese, honest about unknown, cacheable at the edge."""

import json
import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone, translation

from demo.registry import seed_demo
from monitoring.models import AIModel, Incident, IncidentUpdate, Maintenance, Provider
from monitoring.status import Status
from monitoring.transitions import record_status
from publishing import snapshot_store
from publishing.snapshot_store import current_snapshot
from statuspage.charts import latency_sparkline, uptime_bars

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("renew_snapshot")]

LOCALES = ["ko", "en", "ja"]


@pytest.fixture
def registry(provider):
    other = Provider.objects.create(name="Anthropic", slug="anthropic", display_order=1)
    AIModel.objects.create(provider=provider, name="GPT-4o", slug="gpt-4o", endpoint="http://127.0.0.1:8900/v1")
    AIModel.objects.create(provider=provider, name="Embed", slug="embed", kind="embedding", endpoint="http://x.test/v1")
    AIModel.objects.create(provider=other, name="Claude", slug="claude", endpoint="http://x.test/v1")
    AIModel.objects.create(provider=other, name="Internal", slug="internal", public=False, endpoint="http://x.test/v1")


def rows(html: str) -> dict[str, str]:
    """data-model -> data-status of every model row on an overview page."""
    return dict(re.findall(r'<li class="model" data-model="([^"]+)" data-status="([^"]+)"', html))


def headline(html: str) -> str:
    return re.search(r'<h2 class="banner-headline" id="banner-headline">(.*?)</h2>', html).group(1)


def version_of(html: str) -> str:
    return re.search(r'<html lang="[^"]+" data-snapshot-version="([^"]+)"', html).group(1)


def page(client, path: str, **headers) -> str:
    response = client.get(path, **headers)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def set_all(status: str) -> None:
    for model_id in AIModel.objects.values_list("pk", flat=True):
        record_status(model_id, status, checked=True, reason="test")


def test_every_locale_shows_the_same_snapshot_version_and_the_same_models(registry, client):
    pages = {lang: page(client, f"/{lang}/") for lang in LOCALES}
    assert len({version_of(html) for html in pages.values()}) == 1
    assert version_of(pages["en"]) == current_snapshot().version
    assert len({frozenset(rows(html).items()) for html in pages.values()}) == 1
    for lang, html in pages.items():
        assert f'<html lang="{lang}"' in html


def test_the_rows_are_the_registry_s_public_models(registry, client):
    shown = rows(page(client, "/en/"))
    public = {m.public_slug for m in AIModel.objects.filter(public=True).select_related("provider")}
    assert set(shown) == public and len(shown) == AIModel.objects.filter(public=True).count() == 3
    assert "anthropic/internal" not in shown


def test_models_are_grouped_by_provider_in_order(registry, client):
    html = page(client, "/en/")
    assert html.index('data-provider="openai"') < html.index('data-provider="anthropic"')
    openai = html[html.index('data-provider="openai"') : html.index('data-provider="anthropic"')]
    assert 'data-model="openai/gpt-4o"' in openai and 'data-model="anthropic/claude"' not in openai


def test_after_seed_demo_no_row_is_operational_and_the_banner_counts_the_unknown(db, client):
    seed_demo()
    html = page(client, "/en/")
    shown = rows(html)
    assert len(shown) == 12 and set(shown.values()) == {"unknown"}
    assert "operational" not in shown.values()
    assert headline(html) == "No recent evidence for any model"
    assert "12 of 12 models have no recent evidence" in html
    assert 'data-tone="unknown"' in html


def test_a_status_is_text_icon_and_colour_and_unknown_is_a_grey_dash(registry, client):
    record_status(AIModel.objects.get(slug="gpt-4o").pk, Status.MAJOR_OUTAGE, checked=True, reason="HTTP 503")
    html = page(client, "/en/")
    row = re.search(r'data-model="openai/gpt-4o".*?</li>', html, re.S).group(0)
    assert 'class="status" data-status="major_outage"' in row
    assert '<use href="#i-major_outage">' in row and "Major outage" in row
    unknown = re.search(r'data-model="openai/embed".*?</li>', html, re.S).group(0)
    assert '<use href="#i-unknown">' in unknown and "Unknown" in unknown
    assert '<symbol id="i-unknown" viewBox="0 0 16 16"><path d="M3 8h10"/>' in html  # drawn as a dash
    korean = page(client, "/ko/")
    assert "대규모 장애" in korean and "알 수 없음" in korean


def test_all_systems_operational_only_when_every_model_has_evidence_of_it(registry, client, renew_snapshot):
    set_all(Status.OPERATIONAL)
    renew_snapshot()
    assert headline(page(client, "/en/")) == "All systems operational"
    record_status(AIModel.objects.get(slug="claude").pk, Status.UNKNOWN, reason="probe fault")
    renew_snapshot()
    html = page(client, "/en/")
    assert headline(html) == "No known issues" and "1 of 3 models has no recent evidence" in html


def test_with_no_models_the_page_says_so_rather_than_all_operational(db, client):
    assert headline(page(client, "/en/")) == "No models are monitored yet"


def test_the_banner_follows_the_page_indicator(registry, client, renew_snapshot):
    set_all(Status.OPERATIONAL)
    record_status(AIModel.objects.get(slug="embed").pk, Status.DEGRADED_PERFORMANCE, checked=True)
    renew_snapshot()
    html = page(client, "/en/")
    assert 'data-indicator="minor"' in html and headline(html) == "Partially degraded service"


def test_the_root_redirects_by_accept_language_or_the_remembered_choice(client):
    assert client.get("/", HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")["Location"] == "/ja/"
    assert client.get("/", HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9")["Location"] == "/ko/"
    assert client.get("/", HTTP_ACCEPT_LANGUAGE="fr-FR")["Location"] == "/en/"
    client.cookies["django_language"] = "ko"
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="ja")
    assert response["Location"] == "/ko/" and "Accept-Language" in response["Vary"]


def test_an_unknown_language_falls_back_to_one_the_site_has(client):
    assert client.get("/fr/", HTTP_ACCEPT_LANGUAGE="ja")["Location"] == "/ja/"
    assert client.get("/ko-kr/models/openai/gpt-4o/")["Location"] == "/ko/models/openai/gpt-4o/"
    assert client.get("/de/incidents/?page=2", HTTP_ACCEPT_LANGUAGE="fr")["Location"] == "/en/incidents/?page=2"
    assert client.get("/zz/").status_code == 404


def test_an_unknown_model_is_a_404_page_or_json_as_asked(registry, client):
    html = client.get("/ja/models/openai/nope/")
    assert html.status_code == 404 and "見つかりません" in html.content.decode()
    api = client.get("/en/models/openai/nope/", HTTP_ACCEPT="application/json")
    assert api.status_code == 404 and api.json() == {"detail": "No public model openai/nope."}
    private = client.get("/en/models/anthropic/internal/")
    assert private.status_code == 404


@pytest.mark.parametrize("path", ["/en/", "/ko/", "/ja/models/openai/gpt-4o/"])
def test_snapshot_pages_carry_the_version_an_etag_and_no_cookie(registry, client, path):
    response = client.get(path)
    snapshot = current_snapshot()
    assert response["X-Snapshot-Version"] == snapshot.version
    assert response["ETag"].startswith(f'"{snapshot.version}-')
    assert not response.cookies
    assert "cookie" not in response.get("Vary", "").lower()
    again = client.get(path, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again["X-Snapshot-Version"] == snapshot.version


def test_locale_pages_have_different_etags(registry, client):
    assert client.get("/en/")["ETag"] != client.get("/ko/")["ETag"]


@pytest.mark.parametrize("path", ["/en/", "/ja/models/openai/gpt-4o/"])
def test_snapshot_pages_render_from_the_snapshot_alone(registry, client, monkeypatch, django_assert_num_queries, path):
    monkeypatch.setattr(snapshot_store, "POLL_INTERVAL", 3600)
    current_snapshot()
    # The detail page reads the model's status history (fixed below the snapshot's sequence) and its
    # last hour by minute (up to the snapshot's build time): two queries.
    with django_assert_num_queries(0 if path == "/en/" else 2):
        assert client.get(path).status_code == 200


def test_the_model_detail_shows_its_history_uptime_and_latency(registry, client, renew_snapshot):
    gpt = AIModel.objects.get(slug="gpt-4o")
    record_status(gpt.pk, Status.OPERATIONAL, checked=True, reason="ok")
    record_status(gpt.pk, Status.MAJOR_OUTAGE, checked=True, reason="HTTP 503 twice")
    renew_snapshot()
    html = page(client, "/en/models/openai/gpt-4o/")
    assert 'data-model="openai/gpt-4o" data-status="major_outage"' in html
    assert "HTTP 503 twice" in html and html.count('<table class="history">') == 1
    assert html.count("<tr>") == 3  # header and two changes
    assert 'class="bars bars-large"' in html and 'class="spark spark-large' in html


def test_incidents_and_maintenance_appear_on_the_overview(registry, client):
    gpt = AIModel.objects.get(slug="gpt-4o")
    incident = Incident.objects.create(title="Elevated errors on GPT-4o", impact=Incident.Impact.MAJOR)
    incident.models_affected.add(gpt)
    IncidentUpdate.objects.create(incident=incident, state="investigating", body="Looking into 503s.")
    now = timezone.now()
    Maintenance.objects.create(
        title="Upgrade", model=gpt, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )
    html = page(client, "/en/")
    assert "Elevated errors on GPT-4o" in html and "Looking into 503s." in html and "Upgrade" in html
    assert f'data-incidents="i{incident.pk}:investigating:' in html


def test_the_incident_history_reads_the_database_and_is_not_edge_cached(registry, client):
    old = Incident.objects.create(
        title="Old outage",
        state=Incident.State.RESOLVED,
        started_at=timezone.now() - timedelta(days=60),
        resolved_at=timezone.now() - timedelta(days=59),
    )
    IncidentUpdate.objects.create(incident=old, state="resolved", body="Fixed.")
    response = client.get("/ko/incidents/")
    assert response.status_code == 200 and "X-Snapshot-Version" not in response
    html = response.content.decode()
    assert "Old outage" in html and "Fixed." in html and "해결됨" in html


@override_settings(LANGUAGE_CODE="en")
def test_an_automatic_incident_reads_in_each_pages_language_and_an_operators_words_as_written(
    registry, client, renew_snapshot
):
    from alerts.incidents import update_incidents

    gpt = AIModel.objects.get(slug="gpt-4o")
    record_status(gpt.pk, Status.MAJOR_OUTAGE, reason="HTTP 503", source="operator", manual=True)
    update_incidents()
    renew_snapshot()
    pages = {lang: page(client, f"/{lang}/") for lang in LOCALES}
    assert "OpenAI GPT-4o is unavailable" in pages["en"] and "We are investigating." in pages["en"]
    assert "사용 불가" in pages["ko"] and "원인을 조사하고 있습니다" in pages["ko"]
    assert "利用できません" in pages["ja"] and "調査しています" in pages["ja"]
    assert "is unavailable" not in pages["ko"] + pages["ja"]
    assert "利用できません" in page(client, "/ja/models/openai/gpt-4o/")
    assert "사용 불가" in client.get("/ko/incidents/").content.decode()

    incident = Incident.objects.get()
    incident.title = "GPT-4o: errors at the upstream region"
    incident.save()
    renew_snapshot()
    for lang in LOCALES:
        assert "GPT-4o: errors at the upstream region" in page(client, f"/{lang}/")


def test_the_page_carries_the_texts_its_script_needs(registry, client):
    html = page(client, "/ja/")
    strings = json.loads(
        re.search(r'<script id="statuspage-strings" type="application/json">(.*?)</script>', html).group(1)
    )
    assert strings["status"]["unknown"] == "不明" and strings["connection"]["live"] == "ライブ"
    assert "{n}" in strings["unknown_sentence"][1]


def test_the_language_switcher_links_the_same_page_in_each_language(registry, client):
    html = page(client, "/en/models/openai/gpt-4o/")
    for lang in LOCALES:
        assert f'href="/{lang}/models/openai/gpt-4o/" hreflang="{lang}"' in html


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
)
def test_with_redis_down_the_pages_are_built_from_the_database(registry, client, renew_snapshot):
    renew_snapshot()
    for path in ["/en/", "/ko/", "/api/v2/summary.json", "/badge/openai/gpt-4o.svg"]:
        assert client.get(path).status_code == 200, path
    assert len(rows(page(client, "/ja/"))) == 3


@translation.override("en")
def test_a_day_without_evidence_is_a_grey_bar_never_a_green_one():
    svg = uptime_bars({"first_day": "2026-01-01", "percent_90d": None, "days": [None] * 90})
    assert 'class="bar-none"' in svg and "bar-up" not in svg
    assert 'x="0" width="359"' in svg and "2026-01-01 – 2026-03-31: No data" in svg


@translation.override("en")
def test_uptime_bars_give_each_day_its_figures():
    days = [None] * 87 + [100.0, [70.0, 1800, 3600, 0], [100.0, 0, 0, 600]]
    svg = uptime_bars({"first_day": "2026-01-01", "percent_90d": 90.0, "days": days})
    assert svg.count("<rect") == 4
    assert 'class="bar-up" x="348"' in svg
    assert "2026-03-30: 70% uptime · major outage 30 min · partial outage 1 h" in svg
    assert 'class="bar-degraded" x="356"' in svg and "degraded 10 min" in svg
    assert 'aria-label="Uptime over 90 days: 90%"' in svg


@translation.override("en")
def test_the_latency_sparkline_breaks_where_an_hour_has_no_data():
    values = [100.0, 200.0, None, 150.0, None, None] + [None] * 16 + [120.0, 130.0]
    svg = latency_sparkline({"hourly_p50_ms": values})
    path = re.search(r'<path d="([^"]+)"', svg).group(1)
    assert path.count("M") == 2  # two runs of consecutive hours
    assert re.search(r'<path class="dots" d="M12.5 [\d.]+ h0.01"/>', svg)  # the lone hour
    assert "100 ms to 200 ms; latest 130 ms" in svg
    assert "no data" in latency_sparkline({"hourly_p50_ms": [None] * 24})


def test_the_incident_history_is_grouped_by_day_and_quiet_days_say_so(registry, client):
    today = timezone.localdate()
    for days_ago, title in [(0, "Today's outage"), (3, "Earlier outage")]:
        started = timezone.now() - timedelta(days=days_ago)
        incident = Incident.objects.create(title=title, state=Incident.State.RESOLVED, started_at=started)
        IncidentUpdate.objects.create(incident=incident, state="resolved", body="Fixed.", at=started)
    html = client.get("/en/incidents/").content.decode()
    days = re.findall(r'<h2 id="day-(\d{4}-\d\d-\d\d)"', html)
    assert days[0] == today.isoformat() and len(days) == 14  # the last two weeks, newest first
    sections = dict(zip(days, re.split(r'<h2 id="day-\d{4}-\d\d-\d\d"', html)[1:], strict=True))
    assert "Today&#x27;s outage" in sections[today.isoformat()]
    assert "Earlier outage" in sections[(today - timedelta(days=3)).isoformat()]
    assert "No incidents reported." in sections[(today - timedelta(days=1)).isoformat()]
    assert "No incidents reported." not in sections[today.isoformat()]


def test_the_site_title_is_translated_and_machine_details_stay_out_of_the_footer(registry, client):
    assert "<title>AI 모델 상태</title>" in page(client, "/ko/")
    assert "<title>AI モデルのステータス</title>" in page(client, "/ja/")
    html = page(client, "/en/")
    assert "<title>AI model status</title>" in html
    assert f'data-snapshot-version="{current_snapshot().version}"' in html
    assert "Snapshot " + current_snapshot().version not in html
    with override_settings(SITE_NAME="Acme AI status"):
        snapshot_store.store = snapshot_store.SnapshotStore()
        assert "<title>Acme AI status</title>" in page(client, "/ko/")


@override_settings(SITE_URL="https://status.example.com")
def test_the_badge_snippet_uses_an_absolute_address(registry, client):
    html = page(client, "/en/models/openai/gpt-4o/")
    assert "](https://status.example.com/badge/openai/gpt-4o.svg)" in html


def test_incident_times_and_page_times_share_one_localised_format_with_the_time_zone(registry, client):
    from alerts.incidents import update_incidents

    gpt = AIModel.objects.get(slug="gpt-4o")
    record_status(gpt.pk, Status.MAJOR_OUTAGE, reason="failing: HTTP 503: down.", checked=True)
    update_incidents()
    snapshot_store.store = snapshot_store.SnapshotStore()
    html = page(client, "/en/")
    shown = re.findall(r"<time datetime=[^>]+>([^<]+)</time>", html)
    assert shown and all(re.fullmatch(r"[A-Z][a-z]{2}\.? \d{1,2}, \d{4}, [\d:]+ [ap]\.m\. UTC", t) for t in shown), (
        shown
    )
    body = Incident.objects.get().updates.get().body
    assert any(t in body for t in shown)  # the incident text writes the same moment the same way


@pytest.mark.parametrize(
    ("language", "stored", "shown"),
    [
        ("ko", "failing: HTTP 503: overloaded", "실패: HTTP 503: overloaded"),
        ("ja", "failing: HTTP 503: overloaded", "失敗: HTTP 503: overloaded"),
        ("ko", "answered in 426 ms", "426 ms 만에 응답"),
        (
            "ja",
            "degraded: time to first token 2806 ms over the 1500 ms threshold",
            "パフォーマンス低下: 最初のトークンまで 2806 ms(しきい値 1500 ms 超過)",
        ),
        ("ko", "failing in eu, us of 3 regions: timeout", "3개 리전 중 eu, us에서 실패: timeout"),
        ("en", "failing: HTTP 503: overloaded", "failing: HTTP 503: overloaded"),
        ("ja", "an operator's own words", "an operator's own words"),
    ],
)
def test_derived_reasons_are_shown_in_the_page_language_with_their_evidence_as_it_came(language, stored, shown):
    from statuspage.formatting import reason

    with translation.override(language):
        assert reason(stored) == shown
