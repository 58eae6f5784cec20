"""The alert channels API (/api/v1/alert-channels/): the admin role writes, viewers read; "send a test"."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from alerts.delivery import send_test
from alerts.models import Channel
from alerts.serializers import ChannelCreatedSerializer, ChannelSerializer, TestResultSerializer
from monitoring.api.permissions import AdministratorsOnly


class ChannelViewSet(viewsets.ModelViewSet):
    """Where alerts go and which ones. Secrets are write-only; a webhook's generated secret is returned once."""

    serializer_class = ChannelSerializer
    permission_classes = [AdministratorsOnly]
    queryset = Channel.objects.prefetch_related("providers", "ai_models__provider")

    @extend_schema(responses={201: ChannelCreatedSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        channel = serializer.save()
        return Response(ChannelCreatedSerializer(channel, context=self.get_serializer_context()).data, status=201)

    @extend_schema(request=None, responses={200: TestResultSerializer, 502: TestResultSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk=None) -> Response:
        """Send a test message now; 200 when the receiver took it, 502 with the error when not."""
        outcome = send_test(self.get_object())
        body = {
            "ok": outcome.ok,
            "notification_id": outcome.notification_id,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }
        return Response(body, status=status.HTTP_200_OK if outcome.ok else status.HTTP_502_BAD_GATEWAY)
