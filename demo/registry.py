"""The demo registry: models named like real ones, all probing the simulator's demo scenario."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from monitoring.models import AIModel, ModelKind, ProbeKind, Provider

PROVIDERS = [
    ("openai", "OpenAI", "https://openai.com"),
    ("anthropic", "Anthropic", "https://www.anthropic.com"),
    ("google", "Google", "https://ai.google.dev"),
    ("mistral", "Mistral AI", "https://mistral.ai"),
]

CHAT, EMBED = (ModelKind.CHAT, ProbeKind.OPENAI_CHAT), (ModelKind.EMBEDDING, ProbeKind.OPENAI_EMBEDDINGS)
ANTHROPIC = (ModelKind.CHAT, ProbeKind.ANTHROPIC_MESSAGES)

# (provider, upstream model id, display name, (kind, probe kind)). The simulator's demo scenario
# gives o3-mini a slow first token, gemini-2.5-flash a permanent 503, claude-3-5-haiku a flap
# and claude-opus-4 a 429 on every request; the rest are healthy.
MODELS = [
    ("openai", "gpt-4o", "GPT-4o", CHAT),
    ("openai", "gpt-4o-mini", "GPT-4o mini", CHAT),
    ("openai", "o3-mini", "o3-mini", CHAT),
    ("openai", "text-embedding-3-small", "text-embedding-3-small", EMBED),
    ("anthropic", "claude-sonnet-4", "Claude Sonnet 4", ANTHROPIC),
    ("anthropic", "claude-opus-4", "Claude Opus 4", ANTHROPIC),
    ("anthropic", "claude-3-5-haiku", "Claude 3.5 Haiku", ANTHROPIC),
    ("google", "gemini-2.5-pro", "Gemini 2.5 Pro", CHAT),
    ("google", "gemini-2.5-flash", "Gemini 2.5 Flash", CHAT),
    ("google", "text-embedding-004", "text-embedding-004", EMBED),
    ("mistral", "mistral-large-latest", "Mistral Large", CHAT),
    ("mistral", "mistral-embed", "Mistral Embed", EMBED),
]


def seed_demo(simulator_url: str | None = None) -> tuple[int, int]:
    """Create or update the demo providers and models; returns (created, updated)."""
    endpoint = (simulator_url or settings.SIMULATOR_URL).rstrip("/") + "/v1"
    created = updated = 0
    with transaction.atomic():
        providers = {}
        for order, (slug, name, url) in enumerate(PROVIDERS):
            providers[slug], _ = Provider.objects.update_or_create(
                slug=slug, defaults={"name": name, "url": url, "display_order": order}
            )
        for order, (provider, upstream, name, (kind, probe_kind)) in enumerate(MODELS):
            _, was_created = AIModel.objects.update_or_create(
                provider=providers[provider],
                slug=upstream.replace(".", "-"),
                defaults={
                    "name": name,
                    "kind": kind,
                    "probe_kind": probe_kind,
                    "endpoint": endpoint,
                    "upstream_model": upstream,
                    "probe_config": {"max_tokens": 16} if kind == ModelKind.CHAT else {},
                    "interval_seconds": 10,
                    "timeout_seconds": 8,
                    "ttft_threshold_ms": 1500,
                    "latency_threshold_ms": 4000,
                    "display_order": order,
                },
            )
            created += was_created
            updated += not was_created
    return created, updated
