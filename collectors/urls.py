"""The collectors' API (under /api/): pushed results, and the remote agents' assignment, results and list."""

from django.urls import path

from collectors.api.agents import AgentListView, AssignmentView, agent_results
from collectors.api.ingest import IngestView

urlpatterns = [
    path("v1/ingest/", IngestView.as_view(), name="api-ingest"),
    path("v1/agents/", AgentListView.as_view(), name="api-agent-list"),
    path("v1/agents/assignment/", AssignmentView.as_view(), name="api-agent-assignment"),
    path("v1/agents/results/", agent_results, name="api-agent-results"),
]
