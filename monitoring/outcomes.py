"""What one probe result says about a model: the evidence vocabulary of probes, stored results and derivation."""

from django.db import models


class Outcome(models.TextChoices):
    OK = "ok", "ok"
    # The provider failed: 5xx, 529 overloaded, a malformed answer, an unmet condition.
    PROVIDER_FAULT = "provider_fault", "provider fault"
    # Our side failed: 401/403 (key), 402/quota, 400/404/422 (invalid request, unknown model), bad config.
    PROBE_FAULT = "probe_fault", "probe or account fault"
    # 429 on our own key.
    RATE_LIMITED = "rate_limited", "rate limited"
    TIMEOUT = "timeout", "timeout"
    BROKEN_STREAM = "broken_stream", "broken stream"
