"""Register the demo models (pointed at the simulator); running it again changes nothing new."""

from django.core.management.base import BaseCommand

from demo.history import write_history
from demo.registry import MODELS, PROVIDERS, seed_demo


class Command(BaseCommand):
    help = "Create the demo providers and models, all probing the simulator. Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--simulator-url", help="Base URL of the simulator (default: the SIMULATOR_URL setting).")
        parser.add_argument(
            "--history-hours",
            type=float,
            default=0.0,
            help="Hours of compressed history (a result a minute) written for models without results, so the "
            "anomaly detectors know each model's normal from the start (make run asks for 6; default none).",
        )

    def handle(self, *args, simulator_url: str | None = None, history_hours: float = 0.0, **options) -> None:
        created, updated = seed_demo(simulator_url)
        self.stdout.write(
            f"Demo: {len(PROVIDERS)} providers, {len(MODELS)} models ({created} created, {updated} already present)."
        )
        if history_hours > 0:
            written = write_history(hours=history_hours)
            self.stdout.write(
                f"History: {written} results over the last {history_hours:g} hours for anomaly detection."
            )
