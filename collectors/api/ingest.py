"""POST /api/v1/ingest/: remote collectors (and other monitors) push results, authenticated by a collector token."""

from __future__ import annotations

from django.db import DatabaseError
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collectors.evaluate import evaluate
from collectors.models import CollectorToken
from collectors.probes.base import ProbeResult
from collectors.storage import Observation, ResultStore
from monitoring.models import AIModel
from monitoring.outcomes import Outcome

MAX_RESULTS = 5000


class CollectorTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            return None
        collector = CollectorToken.authenticate(parts[1].decode(errors="replace"))
        if collector is None:
            raise AuthenticationFailed("Unknown or revoked collector token.")
        return (None, collector)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ingest"'


class IsCollector(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, CollectorToken)


class PushedResultSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="<provider>/<model>")
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    time = serializers.DateTimeField(required=False, help_text="When the check ran; defaults to now.")
    region = serializers.CharField(required=False, max_length=32, help_text="Defaults to the token's region.")
    http_status = serializers.IntegerField(required=False, allow_null=True, min_value=100, max_value=599)
    latency_ms = serializers.FloatField(required=False, allow_null=True, min_value=0)
    ttft_ms = serializers.FloatField(required=False, allow_null=True, min_value=0)
    tokens_per_s = serializers.FloatField(required=False, allow_null=True, min_value=0)
    error = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate_time(self, value):
        if value > timezone.now() + timezone.timedelta(minutes=5):
            raise serializers.ValidationError("The time is in the future.")
        return value


class IngestSerializer(serializers.Serializer):
    results = PushedResultSerializer(many=True, allow_empty=False, max_length=MAX_RESULTS)


class IngestView(APIView):
    authentication_classes = [CollectorTokenAuthentication]
    permission_classes = [IsCollector]

    @extend_schema(request=IngestSerializer, responses={202: dict})
    def post(self, request: Request) -> Response:
        serializer = IngestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        collector: CollectorToken = request.auth
        items = serializer.validated_data["results"]
        slugs = {tuple(item["model"].partition("/")[::2]) for item in items}
        models = {
            f"{p}/{m}": pk
            for pk, p, m in AIModel.objects.filter(provider__slug__in={p for p, _ in slugs}).values_list(
                "pk", "provider__slug", "slug"
            )
        }
        unknown = sorted({item["model"] for item in items} - models.keys())
        if unknown:
            return Response(
                {"results": [f"Unknown model(s): {', '.join(unknown)}. Use <provider>/<model>."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        now = timezone.now()
        observations = [
            Observation(
                models[item["model"]],
                item.get("region") or collector.region,
                item.get("time") or now,
                ProbeResult(
                    outcome=item["outcome"],
                    http_status=item.get("http_status"),
                    latency_ms=item.get("latency_ms"),
                    ttft_ms=item.get("ttft_ms"),
                    tokens_per_s=item.get("tokens_per_s"),
                    error=item.get("error", ""),
                ),
            )
            for item in items
        ]
        stored = ResultStore().save(observations)
        changes = []
        if stored:
            try:
                changes = evaluate({o.model_id for o in observations})
            except DatabaseError:
                pass  # results are stored; the next evaluation derives the status
        CollectorToken.objects.filter(pk=collector.pk).update(last_used_at=now)
        return Response(
            {"accepted": len(observations), "status_changes": [c.pk for c in changes]},
            status=status.HTTP_202_ACCEPTED,
        )
