"""Give every model that lacks one its `unknown` status row; safe to run any number of times."""

from django.core.management.base import BaseCommand
from django.db import transaction

from monitoring.models import AIModel, ModelStatus


class Command(BaseCommand):
    help = "Create the missing status row (unknown) of every model that has none, and report the counts."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            missing = list(AIModel.objects.filter(status_row__isnull=True).values_list("pk", flat=True))
            ModelStatus.objects.bulk_create([ModelStatus(model_id=pk) for pk in missing], ignore_conflicts=True)
        models, statuses = AIModel.objects.count(), ModelStatus.objects.count()
        self.stdout.write(f"Created {len(missing)} status row(s). Models: {models}, statuses: {statuses}.")
        if models != statuses:
            self.stderr.write(self.style.ERROR("Models and statuses still differ; check for concurrent writes."))
