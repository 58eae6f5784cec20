"""Register the demo models (pointed at the simulator); running it again changes nothing new."""

from django.core.management.base import BaseCommand

from demo.registry import MODELS, PROVIDERS, seed_demo


class Command(BaseCommand):
    help = "Create the demo providers and models, all probing the simulator. Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--simulator-url", help="Base URL of the simulator (default: the SIMULATOR_URL setting).")

    def handle(self, *args, simulator_url: str | None = None, **options) -> None:
        created, updated = seed_demo(simulator_url)
        self.stdout.write(
            f"Demo: {len(PROVIDERS)} providers, {len(MODELS)} models ({created} created, {updated} already present)."
        )
