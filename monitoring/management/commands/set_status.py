"""An operator's manual status for one model, recorded in the status history like any other change."""

from django.core.management.base import BaseCommand, CommandError

from monitoring.acting import acting_as, command_operator
from monitoring.models import AIModel, StatusChange
from monitoring.status import Status
from monitoring.transitions import record_status

RELEASE = "auto"


class Command(BaseCommand):
    help = (
        "Set a model's status by hand. It stays until an operator changes it; "
        f"'{RELEASE}' returns the model to the collectors (unknown until the next result)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", help="<provider>/<model>, for example openai/gpt-4o")
        parser.add_argument("status", choices=[*Status.values, RELEASE])
        parser.add_argument("--reason", required=True, help="Why; shown in the history and the admin.")

    def handle(self, *args, model: str, status: str, reason: str, **options) -> None:
        provider_slug, _, model_slug = model.partition("/")
        try:
            obj = AIModel.objects.select_related("provider").get(provider__slug=provider_slug, slug=model_slug)
        except AIModel.DoesNotExist:
            raise CommandError(f"No model {model!r}; use <provider>/<model> as shown in the admin.") from None
        manual = status != RELEASE
        operator = command_operator()
        # The audit trail names the command's operator as it names a signed-in user.
        with acting_as(name=operator):
            change = record_status(
                obj.pk,
                status if manual else Status.UNKNOWN,
                reason=reason,
                source=StatusChange.Source.OPERATOR,
                manual=manual,
                set_by=operator,
            )
        shown = status if manual else f"{Status.UNKNOWN} (collectors decide from the next result)"
        if change:
            self.stdout.write(f"{obj.public_slug}: {change.from_status} -> {shown} (change #{change.pk}).")
        else:
            self.stdout.write(f"{obj.public_slug}: already {shown}; manual={manual}.")
