from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CollectorsConfig(AppConfig):
    name = "collectors"
    verbose_name = _("Collectors")

    def ready(self) -> None:
        from collectors import checks  # noqa: F401  (registers the system checks)
        from collectors.probe_rules import register_probe_kinds

        register_probe_kinds()
