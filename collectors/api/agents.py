"""The remote agents' API: assignment (ETag), result batches (exactly once), and the staff's list of agents."""

from __future__ import annotations

import logging

import orjson
from asgiref.sync import sync_to_async
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from collectors import assignment
from collectors.agent_results import BadBatch, Receipt, note_contact, parse_batch, take_in
from collectors.deferred_evaluation import deferred
from collectors.models import Agent
from monitoring.api.permissions import AdministratorsOnly

log = logging.getLogger(__name__)

# The highest sequence the site stored from the agent: an agent that lost its state goes on from here.
LAST_SEQ_HEADER = "X-Agent-Last-Seq"


class AgentTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            return None
        agent = Agent.authenticate(parts[1].decode(errors="replace"))
        if agent is None:
            raise AuthenticationFailed("Unknown or revoked agent token.")
        return (None, agent)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="agents"'


class IsAgent(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, Agent)


def _json(payload: object, status_code: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(orjson.dumps(payload), status=status_code, content_type="application/json")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class AssignmentView(APIView):
    """GET: the models this agent probes. Send If-None-Match with the last ETag: 304 when nothing changed."""

    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]

    @extend_schema(responses={200: dict, 304: None})
    def get(self, request: Request) -> HttpResponse:
        agent: Agent = request.auth
        note_contact(agent, timezone.now())
        body, etag = assignment.encode(assignment.assignment(agent.region, secure=request.is_secure()))
        headers = {"ETag": etag, LAST_SEQ_HEADER: str(agent.last_seq), "Cache-Control": "no-store"}
        if etag in request.headers.get("If-None-Match", ""):
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(body, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return response


def _take_in(token: str, batch, received) -> Receipt | None:
    """Authenticate and store, on a worker thread (None: the token is unknown or revoked).

    The thread's connection is closed at the end: worker threads come and go with no request cycle to
    close it, and a connection costs a few milliseconds against the batch's hundred.
    """
    try:
        agent = Agent.authenticate(token)
        if agent is None:
            return None
        receipt = take_in(agent, batch, received)
        try:
            deferred.add(receipt.model_ids)
        except DatabaseError as exc:
            log.warning("status derivation deferred: %s", exc)  # stored; the next batch derives again
        return receipt
    finally:
        connections.close_all()


def _authenticate(token: str) -> Agent | None:
    try:
        return Agent.authenticate(token)
    finally:
        connections.close_all()


@csrf_exempt
async def agent_results(request: HttpRequest) -> HttpResponse:
    """POST a batch: {"agent_time", "health", "results": [{"seq", "model", "time", "outcome", ...}]}.

    An async view whose database work runs on a thread pool (not Django's single thread for sync
    views), so that batches from several agents are stored side by side.
    """
    if request.method != "POST":
        return _json({"detail": f"Method {request.method} not allowed."}, status.HTTP_405_METHOD_NOT_ALLOWED)
    received = timezone.now()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    unauthorized = _json({"detail": "Unknown or revoked agent token."}, status.HTTP_401_UNAUTHORIZED,
                         WWW_Authenticate='Bearer realm="agents"')  # fmt: skip
    if scheme.lower() != "bearer" or not token.strip():
        return unauthorized
    try:
        batch = parse_batch(orjson.loads(request.body))
    except (BadBatch, orjson.JSONDecodeError) as exc:
        # The token still decides first: a wrong one gets 401 whatever it sent.
        if await sync_to_async(_authenticate, thread_sensitive=False)(token.strip()) is None:
            return unauthorized
        errors = exc.errors if isinstance(exc, BadBatch) else {"batch": f"not JSON: {exc}"}
        return _json({"errors": errors}, status.HTTP_400_BAD_REQUEST)
    receipt = await sync_to_async(_take_in, thread_sensitive=False)(token.strip(), batch, received)
    if receipt is None:
        return unauthorized
    return _json(
        {
            "stored": receipt.stored,
            "duplicates": receipt.duplicates,
            "dropped": receipt.dropped,
            "rejected": receipt.rejected,
            "last_seq": receipt.last_seq,
            "clock_skew_s": round(receipt.skew_s, 3),
            "clock_skewed": receipt.skewed,
            "assignment_hint": receipt.hint,
        }
    )


class AgentSerializer(serializers.ModelSerializer):
    last_seen = serializers.DateTimeField(source="last_seen_at", allow_null=True)

    class Meta:
        model = Agent
        fields = [
            "id", "name", "region", "active", "last_seen", "version", "results_per_s", "spool_depth",
            "spool_dropped", "last_error", "clock_skew_s", "clock_skewed", "sent", "stored", "dropped", "rejected",
            "last_seq", "created_at",
        ]  # fmt: skip


class AgentListView(ListAPIView):
    """Every agent with its health and counts (the viewer role and up)."""

    permission_classes = [AdministratorsOnly]
    serializer_class = AgentSerializer
    queryset = Agent.objects.all()
    pagination_class = None
