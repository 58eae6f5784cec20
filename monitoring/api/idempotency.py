"""Idempotency-Key: a retried POST gets the first answer instead of doing the work twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.db import transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A key is remembered this long (as Stripe does): a retry comes within minutes, not days.
KEPT_FOR = timedelta(hours=24)


def _fingerprint(request: Request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        body = repr(request.data)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a POST handler: the first answer to (user, key) is stored and returned on every retry.

    The key's row is inserted in the same transaction as the work: a concurrent retry waits on the
    unique index until the first commits, then reads its answer. An answer that raised (a
    validation error) is not stored, so the corrected request may reuse the key.
    """

    @wraps(handler)
    def wrapper(view, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return handler(view, request, *args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH:
            message = f"Give 1 to {MAX_KEY_LENGTH} characters."
            return Response({HEADER: [message]}, status=status.HTTP_400_BAD_REQUEST)
        fingerprint = _fingerprint(request)
        IdempotentRequest.objects.filter(user=request.user, created_at__lt=timezone.now() - KEPT_FOR).delete()
        with transaction.atomic():
            record, created = IdempotentRequest.objects.get_or_create(
                user=request.user, key=key, defaults={"fingerprint": fingerprint}
            )
            if not created:
                if record.fingerprint != fingerprint or record.response_status is None:
                    message = "This key was used for another request; use a new key for each operation."
                    return Response({HEADER: [message]}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
                replayed = {"Idempotent-Replayed": "true"}
                return Response(record.response_body, status=record.response_status, headers=replayed)
            response = handler(view, request, *args, **kwargs)
            record.response_status = response.status_code
            record.response_body = response.data
            record.save(update_fields=["response_status", "response_body"])
        return response

    return wrapper
