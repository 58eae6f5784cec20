from django.apps import AppConfig
from django.db.models.signals import post_save
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")

    def ready(self) -> None:
        from monitoring import checks  # noqa: F401  (registers the system checks)
        from monitoring.models import AIModel
        from monitoring.status_rows import ensure_status_row

        post_save.connect(ensure_status_row, sender=AIModel, dispatch_uid="monitoring.ensure_status_row")

        from monitoring.api.registry_changes import note_local_writes

        note_local_writes()
