"""Transports: one module per channel kind, each with `validate(url)`, `mask(url)` and `send(channel, envelope)`."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from types import ModuleType

from alerts.messages import Message

KINDS = ("webhook", "slack", "email", "apprise")


class InvalidDestination(ValueError):
    """A channel's URL or addresses cannot be used; the message says why."""


class DeliveryFailed(Exception):
    """A send that did not reach the receiver. Retried until the notification's attempts run out."""

    def __init__(self, message: str, *, status_code: int | None = None, response: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = response


@dataclass(frozen=True)
class Envelope:
    """A notification as a transport sees it: its stable id, what happened, and the rendered message."""

    message_id: str
    kind: str
    payload: dict
    message: Message
    language: str


@dataclass(frozen=True)
class Delivered:
    status_code: int | None = None
    response: str = ""


def transport_for(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise KeyError(kind)
    return import_module(f"alerts.transports.{kind}")
