"""Registers the chaos run's models, its alert channel and an operator token (run inside the product's env).

`python -m chaos.seed --models N --simulator URL --webhook URL` prints one JSON line: the token.
"""

from __future__ import annotations

import argparse
import json

import django

PROVIDER = "chaos"
# A model the suite sets by hand (the operator API) to time live delivery; no alert channel watches it.
PULSE_PROVIDER = "pulse"
PULSE_MODEL = "beat"
INTERVAL_S = 10


def model_name(index: int) -> str:
    return f"m{index:04d}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, required=True)
    parser.add_argument("--simulator", required=True, help="the simulator's base URL, /v1 included")
    parser.add_argument("--webhook", required=True)
    args = parser.parse_args()
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from alerts.models import Channel
    from monitoring.models import AIModel, ModelKind, ProbeKind, Provider

    with transaction.atomic():
        provider, _ = Provider.objects.get_or_create(slug=PROVIDER, defaults={"name": "Chaos"})
        pulse, _ = Provider.objects.get_or_create(slug=PULSE_PROVIDER, defaults={"name": "Pulse"})
        common = {
            "kind": ModelKind.CHAT,
            "probe_kind": ProbeKind.OPENAI_CHAT,
            "endpoint": args.simulator,
            "probe_config": {"max_tokens": 16},
            "interval_seconds": INTERVAL_S,
            "timeout_seconds": 8,
            # Thresholds far above the simulator's latency: a model is up or down, never merely slow.
            "ttft_threshold_ms": 7000,
            "latency_threshold_ms": 7900,
        }
        AIModel.objects.bulk_create(
            [
                AIModel(provider=provider, slug=name, name=name, upstream_model=name, **common)
                for name in map(model_name, range(args.models))
            ]
        )
        AIModel.objects.create(provider=pulse, slug=PULSE_MODEL, name="Pulse", upstream_model="pulse", **common)
        channel = Channel.objects.create(name="chaos receiver", kind=Channel.Kind.WEBHOOK, url=args.webhook)
        channel.providers.add(provider)
        user = get_user_model().objects.create_user("chaos", is_staff=True, is_superuser=True)
        token = Token.objects.create(user=user)
    print(json.dumps({"token": token.key}))


if __name__ == "__main__":
    main()
