from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = _("Alerts")

    def ready(self) -> None:
        from alerts.wake import waker
        from monitoring.signals import statuses_changed

        statuses_changed.connect(waker.on_changes, dispatch_uid="alerts.wake")
