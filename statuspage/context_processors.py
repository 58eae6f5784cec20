"""What every page's frame needs: the site's name and the same page in each language."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import translate_url
from django.utils.translation import get_language
from django.utils.translation import gettext as _

DEFAULT_SITE_NAME = "AI model status"


def site(request: HttpRequest) -> dict:
    current = get_language()
    return {
        # The default name is translated; a name the operator chose is shown as written.
        "site_name": _("AI model status") if settings.SITE_NAME == DEFAULT_SITE_NAME else settings.SITE_NAME,
        # Absolute links (badge snippets) name the address the site is served on.
        "site_url": settings.SITE_URL.rstrip("/"),
        "page_language": current,
        "language_cookie": settings.LANGUAGE_COOKIE_NAME,
        # Lazy: only pages that show the switcher resolve the URL in every language.
        "language_links": lambda: [
            {"code": code, "name": name, "url": translate_url(request.path, code), "current": code == current}
            for code, name in settings.LANGUAGES
        ],
    }
