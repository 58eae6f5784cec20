"""Outbound HTTP for alerts: only to public addresses (or allow-listed hosts), pinned to the address checked."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _

MAX_RESPONSE_BYTES = 64 * 1024


class UnsafeDestination(ValueError):
    """The URL points at a private, loopback or otherwise internal address that is not allow-listed."""


class RequestFailed(Exception):
    def __init__(self, message: str, status_code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    body: str


def allowed_host(host: str) -> bool:
    return host.lower().strip("[]") in {h.lower().strip("[]") for h in settings.WEBHOOK_ALLOWED_HOSTS}


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_host(host: str) -> None:
    """Refuse, without resolving it, a host that is an internal address or a local name."""
    if allowed_host(host):
        return
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal")):
        raise UnsafeDestination(
            _("%(host)s is a local name; list it in WEBHOOK_ALLOWED_HOSTS to allow it.") % {"host": host}
        )
    try:
        internal = _internal(name)
    except ValueError:
        return  # a DNS name: checked again, resolved, when sending
    if internal:
        raise UnsafeDestination(
            _("%(host)s is a private or loopback address; list it in WEBHOOK_ALLOWED_HOSTS to allow it.")
            % {"host": host}
        )


def resolve(host: str, port: int) -> str:
    """The address to connect to. Every address the name resolves to must be public, unless allow-listed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RequestFailed(f"cannot resolve {host}: {exc.strerror or exc}") from None
    addresses = [info[4][0] for info in infos]
    if not allowed_host(host):
        internal = [a for a in addresses if _internal(a)]
        if internal:
            raise UnsafeDestination(
                _(
                    "%(host)s resolves to %(address)s, a private or loopback address; list the host in "
                    "WEBHOOK_ALLOWED_HOSTS to allow it."
                )
                % {"host": host, "address": internal[0]}
            )
    return addresses[0]


def validate_http_url(url: str, *, https_only: bool = False) -> None:
    """Raise ValidationError for a malformed URL, a scheme not allowed, or an internal host."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(_("Enter a full http(s) URL, for example https://example.com/hooks/status.")) from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError(_("Put credentials in the path or query, not in the URL's user part."))
    host = parts.hostname or ""
    if https_only and parts.scheme != "https" and not allowed_host(host):
        raise ValidationError(_("Use an https:// URL."))
    try:
        check_host(host)
    except UnsafeDestination as exc:
        raise ValidationError(str(exc)) from None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST `body`; a 2xx answer is returned, anything else raises RequestFailed. Redirects are not followed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    check_host(host)
    address = resolve(host, port)
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    connection = connection_class(host, port, address, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers={"Content-Length": str(len(body)), **headers})
        answer = connection.getresponse()
        text = answer.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
    except TimeoutError:
        raise RequestFailed(f"no answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise RequestFailed(f"{type(exc).__name__}: {exc}") from None
    finally:
        connection.close()
    if not 200 <= answer.status < 300:
        raise RequestFailed(f"HTTP {answer.status}: {text[:200].strip()}", answer.status, text)
    return Response(answer.status, text)
