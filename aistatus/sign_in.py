"""Sign-in lockout (django-axes): the backend that refuses a locked-out username and address, and the page saying so."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.shortcuts import render


class LockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check for sign-ins that come with a request (the admin's login form, any web form).

    authenticate() without a request (manage.py, a test client's login) is no sign-in from the web:
    there is no address to lock and nobody to answer, so this backend stands aside and lets the next
    one check the password.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout_response(request, original_response=None, credentials=None):
    """The same page for every locked-out pair: it says nothing about whether the user exists."""
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    response = render(
        request,
        "admin/locked_out.html",
        {"minutes": minutes, "title": "", "site_header": settings.SITE_NAME},
        status=429,
    )
    response["Retry-After"] = str(minutes * 60)
    return response
