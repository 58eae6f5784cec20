from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    """The audit trail of operators' actions; it listens to the other apps and nothing imports it."""

    name = "audit"
    verbose_name = _("Audit trail")

    def ready(self) -> None:
        from audit import recording

        recording.connect()
