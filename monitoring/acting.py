"""Who is acting right now: the operator behind the current request or command.

Set once per request (by the audit app's middleware) or per command (`acting_as(name=...)`), read by
whoever records what an operator did. A context variable, so it follows the request across ASGI's
thread hops and never leaks to another request.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest

from monitoring.client_address import request_address


@dataclass(frozen=True)
class Actor:
    """A request (its user is read when asked: token clients are authenticated inside the view) or a named command."""

    request: HttpRequest | None = None
    name: str = ""

    @property
    def user(self):
        """The signed-in user, or None (anonymous, or a command)."""
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None

    @property
    def username(self) -> str:
        user = self.user
        return user.get_username() if user is not None else self.name

    @property
    def address(self) -> str | None:
        # The same address the lockout and the throttles see (TRUSTED_PROXY_COUNT decides about proxies).
        return request_address(self.request) or None if self.request is not None else None

    @property
    def is_operator(self) -> bool:
        """A signed-in user or a named command: someone whose actions are recorded."""
        return self.user is not None or bool(self.name)


_current: ContextVar[Actor | None] = ContextVar("aistatus_actor", default=None)


def current_actor() -> Actor | None:
    return _current.get()


@contextmanager
def acting_as(*, request: HttpRequest | None = None, name: str = "") -> Iterator[Actor]:
    actor = Actor(request=request, name=name)
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def command_operator() -> str:
    """The name a management command acts under: the OS user, or "manage.py" when there is none."""
    try:
        return f"{getpass.getuser()} (manage.py)"
    except (KeyError, OSError):
        return "manage.py"
