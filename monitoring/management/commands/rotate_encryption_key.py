"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS, so older keys can be dropped."""

from django.core.management.base import BaseCommand

from monitoring.fields import encrypted_fields, reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (provider API keys, webhook secrets) with the first key of "
        "FIELD_ENCRYPTION_KEYS; the other keys are needed only to read them first."
    )

    def handle(self, *args, **options) -> None:
        total = 0
        for model, field in encrypted_fields():
            written, clear = reencrypt(model, field)
            total += written
            note = f" ({clear} were stored in clear)" if clear else ""
            self.stdout.write(f"{model._meta.label}.{field}: {written} value(s) re-encrypted{note}.")
        self.stdout.write(f"Done: {total} value(s) now encrypted with the first key; older keys may be removed.")
