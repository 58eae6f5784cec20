"""How a model's probe settings are checked: rules per probe kind, registered by whoever probes (collectors).

The registry (AIModel.clean, and through it the admin and the API) asks here; it knows the kinds'
names (ProbeKind, the column's choices) but none of their options. Collectors register each kind's
rules when the apps load, so the core never imports probing code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _

Endpoint = Literal["url", "host_port", "none"]


@dataclass(frozen=True)
class ProbeKindRules:
    # What the endpoint field holds for this kind: an http(s) URL, host:port, or nothing.
    endpoint: Endpoint
    # Raises ValueError, naming the option, when the options are unusable.
    check_options: Callable[[Any], None]


_rules: dict[str, ProbeKindRules] = {}


def register(kind: str, rules: ProbeKindRules) -> None:
    _rules[kind] = rules


def registered() -> dict[str, ProbeKindRules]:
    return dict(_rules)


def errors_for(kind: str, endpoint: str, options: Any) -> dict[str, str]:
    """Field errors of a model's probe settings (empty when usable)."""
    rules = _rules.get(kind)
    if rules is None:
        return {"probe_kind": _("No collector knows the probe kind %(kind)s.") % {"kind": kind}}
    errors: dict[str, str] = {}
    if rules.endpoint == "url":
        try:
            URLValidator(schemes=["http", "https"])(endpoint)
        except ValidationError:
            errors["endpoint"] = _("Enter an http(s) URL, for example https://api.example.com/v1.")
    elif rules.endpoint == "host_port":
        parts = urlsplit(f"//{endpoint}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port:
            errors["endpoint"] = _("Enter host:port, for example db.example.com:5432.")
    if not isinstance(options, dict):
        errors["probe_config"] = _("Probe options must be a JSON object.")
    else:
        try:
            rules.check_options(options)
        except ValueError as exc:
            errors["probe_config"] = str(exc)
    return errors
