"""GET /api/v1/snapshot/: the public status document, with ETag and If-None-Match."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from publishing.edge import served_from_snapshot
from publishing.snapshot_store import current_snapshot


@served_from_snapshot
@require_GET
def snapshot_view(request: HttpRequest) -> HttpResponse:
    snapshot = current_snapshot()
    if request.headers.get("If-None-Match") == snapshot.etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(snapshot.body, content_type="application/json")
    response["ETag"] = snapshot.etag
    response["Cache-Control"] = "no-cache"
    response["X-Snapshot-Version"] = snapshot.version
    return response
