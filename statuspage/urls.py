"""Public pages (per locale) and the public machine-readable formats."""

from django.conf import settings
from django.urls import path, re_path

from statuspage import badges, calendar, feeds, statuspage_api, views

_languages = "|".join(code for code, _name in settings.LANGUAGES)

urlpatterns = [
    path("", views.choose_language, name="statuspage-choose-language"),
    path("api/v2/summary.json", statuspage_api.summary, name="statuspage-v2-summary"),
    path("api/v2/status.json", statuspage_api.status, name="statuspage-v2-status"),
    path("api/v2/components.json", statuspage_api.components, name="statuspage-v2-components"),
    path("api/v2/incidents.json", statuspage_api.incidents, name="statuspage-v2-incidents"),
    path("api/v2/incidents/unresolved.json", statuspage_api.unresolved_incidents, name="statuspage-v2-unresolved"),
    path(
        "api/v2/scheduled-maintenances.json",
        statuspage_api.scheduled_maintenances,
        name="statuspage-v2-maintenances",
    ),
    path(
        "api/v2/scheduled-maintenances/upcoming.json",
        statuspage_api.upcoming_maintenances,
        name="statuspage-v2-maintenances-upcoming",
    ),
    path(
        "api/v2/scheduled-maintenances/active.json",
        statuspage_api.active_maintenances,
        name="statuspage-v2-maintenances-active",
    ),
    path("badge/<slug:provider>/<slug:model>.svg", badges.status_badge, name="statuspage-badge"),
    path("badge/<slug:provider>/<slug:model>/uptime.svg", badges.uptime_badge, name="statuspage-badge-uptime"),
    path("badge/<slug:provider>/<slug:model>/latency.svg", badges.latency_badge, name="statuspage-badge-latency"),
    path("feeds/incidents.atom", feeds.incidents_atom, name="statuspage-feed-incidents"),
    path("feeds/providers/<slug:provider>.atom", feeds.provider_atom, name="statuspage-feed-provider"),
    path("feeds/models/<slug:provider>/<slug:model>.atom", feeds.model_atom, name="statuspage-feed-model"),
    path("feeds/maintenance.ics", calendar.maintenance_ics, name="statuspage-feed-maintenance"),
    # Last: a language prefix the site does not have (`/fr/`, `/ko-kr/`) falls back to one it has.
    re_path(
        rf"^(?!(?:{_languages})/)(?P<code>[a-zA-Z]{{2,3}}(?:[-_][a-zA-Z0-9]{{2,8}})*)/(?P<rest>.*)$",
        views.other_language,
        name="statuspage-other-language",
    ),
]

localized_urlpatterns = [
    path("", views.index, name="statuspage-index"),
    path("models/<slug:provider>/<slug:model>/", views.model_detail, name="statuspage-model"),
    path("incidents/", views.incident_history, name="statuspage-incidents"),
]
