"""POST /api/v1/subscriptions/: sign up by email (202 whether or not the address was known), webhook or Web Push."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.client_address import request_address
from subscriptions.signup import (
    RateLimited,
    choice_of,
    normalized_email,
    request_email_subscription,
    request_push_subscription,
    request_webhook_subscription,
)
from subscriptions.webhooks import ChallengeFailed


class SubscriptionRequestSerializer(serializers.Serializer):
    """What the schema documents; the view reads the body itself (its errors come from subscriptions.signup)."""

    email = serializers.EmailField(required=False, help_text="One of `email`, `webhook` or `push`.")
    webhook = serializers.URLField(required=False, help_text="An HTTPS endpoint that answers the challenge.")
    push = serializers.JSONField(required=False, help_text="A browser's PushSubscription (endpoint and keys).")
    providers = serializers.ListField(child=serializers.CharField(), required=False, help_text="Provider slugs.")
    models = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Models as `<provider>/<model>`."
    )
    language = serializers.CharField(required=False, allow_blank=True, help_text="ko, en or ja.")


_DETAIL = inline_serializer("SubscriptionDetail", {"detail": serializers.CharField()})


class SubscriptionCreate(APIView):
    # No session: a cross-site form cannot ride a visitor's cookies, and no CSRF token is asked of API clients.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=SubscriptionRequestSerializer,
        auth=[],
        responses={
            202: _DETAIL,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Errors by field."),
            429: _DETAIL,
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        if not {"email", "webhook", "push"} & set(data):
            return Response(
                {"email": [_("Give an email address (or a webhook URL, or a push subscription).")]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            choice = choice_of(data.get("providers"), data.get("models"), data.get("language"))
            if "push" in data:
                request_push_subscription(data["push"], choice, ip=request_address(request))
            elif "webhook" in data:
                request_webhook_subscription(data["webhook"], choice, ip=request_address(request))
            else:
                request_email_subscription(normalized_email(data.get("email")), choice, ip=request_address(request))
        except ValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        except ChallengeFailed as exc:
            message = _("The endpoint did not answer the challenge: %(error)s") % {"error": exc}
            return Response({"webhook": [message]}, status=status.HTTP_400_BAD_REQUEST)
        except RateLimited:
            return Response({"detail": _("Too many sign-ups from your address; try again later.")}, status=429)
        return Response(
            {"detail": _("If this address can receive mail, a confirmation link is on its way.")},
            status=status.HTTP_202_ACCEPTED,
        )
