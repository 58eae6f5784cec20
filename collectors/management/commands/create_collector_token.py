"""Issue a token with which a remote collector pushes results to /api/v1/ingest/."""

from django.core.management.base import BaseCommand, CommandError

from collectors.models import CollectorToken
from monitoring.acting import acting_as, command_operator


class Command(BaseCommand):
    help = "Create a collector token (printed once; only its hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--region", default="default", help="Region its results are recorded under.")

    def handle(self, *args, name: str, region: str, **options) -> None:
        if CollectorToken.objects.filter(name=name).exists():
            raise CommandError(f"A collector token named {name!r} exists; choose another name.")
        with acting_as(name=command_operator()):  # recorded in the audit trail under the command's operator
            _, token = CollectorToken.issue(name, region)
        self.stdout.write(token)
