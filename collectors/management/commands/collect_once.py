"""Probe models now, store the results, and print each result with the status it leads to."""

import asyncio

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from collectors.runner import probe_all
from collectors.targets import target_of
from monitoring.models import AIModel, ModelStatus, ProbeKind


class Command(BaseCommand):
    help = "Probe the given models (<provider>/<model>), or every enabled model, once; print results and statuses."

    def add_arguments(self, parser) -> None:
        parser.add_argument("models", nargs="*", help="<provider>/<model> ...; none means every enabled model")
        parser.add_argument("--region", default="default")

    def handle(self, *args, models: list[str], region: str, **options) -> None:
        chosen = self._models(models)
        targets = [target_of(m, region) for m in chosen if m.probe_kind != ProbeKind.PUSH]
        if not targets:
            raise CommandError("Nothing to probe: no enabled model (push models are not probed).")
        connections.close_all()
        summary = asyncio.run(probe_all(targets, keep_observations=True))
        names = {m.pk: m.public_slug for m in chosen}
        statuses = {s.model_id: s for s in ModelStatus.objects.filter(model_id__in=names)}
        width = max(len(n) for n in names.values())
        for observation in sorted(summary.observations, key=lambda o: names[o.model_id]):
            r = observation.result
            figures = [
                f"HTTP {r.http_status}" if r.http_status else "",
                f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "",
                f"ttft {r.ttft_ms:.0f} ms" if r.ttft_ms is not None else "",
                f"{r.tokens_per_s:.0f} tok/s" if r.tokens_per_s else "",
            ]
            row = statuses[observation.model_id]
            self.stdout.write(
                f"{names[observation.model_id]:<{width}}  {r.outcome:<14} {' '.join(f for f in figures if f):<32}"
                f" -> {row.status}{' (manual)' if row.manual else ''}: {row.message or r.error}"
            )
        if summary.spooled:
            self.stderr.write(f"{summary.spooled} result(s) spooled: the database did not answer.")

    def _models(self, names: list[str]) -> list[AIModel]:
        queryset = AIModel.objects.select_related("provider", "credential")
        if not names:
            return list(queryset.filter(enabled=True))
        found = []
        for name in names:
            provider, _, slug = name.partition("/")
            try:
                found.append(queryset.get(provider__slug=provider, slug=slug))
            except AIModel.DoesNotExist:
                raise CommandError(f"No model {name!r}; use <provider>/<model>.") from None
        return found
