from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnomaliesConfig(AppConfig):
    name = "anomalies"
    verbose_name = _("Anomalies")

    def ready(self) -> None:
        from anomalies.records import unusual_reasons
        from monitoring.annotations import register_degrading_source

        # Models whose operator opted in (`anomaly_degrades`) are degraded while an anomaly is open:
        # the collectors' one derivation asks the core, which asks here.
        register_degrading_source(unusual_reasons)
