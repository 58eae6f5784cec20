from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PublishingConfig(AppConfig):
    name = "publishing"
    verbose_name = _("Publishing")

    def ready(self) -> None:
        from anomalies.signals import anomalies_changed
        from monitoring.signals import statuses_changed
        from publishing import snapshot_store
        from publishing.realtime import publisher

        # The live hubs of every web process hear of a change through Redis; this process's snapshot
        # store moves at once (the next read rebuilds instead of waiting for its next look at the log).
        statuses_changed.connect(publisher.publish_changes, dispatch_uid="publishing.publish_changes")
        statuses_changed.connect(snapshot_store.note_changes, dispatch_uid="publishing.note_changes")
        # Anomaly events travel the same way; the snapshot sees them through its content mark.
        anomalies_changed.connect(publisher.publish_anomalies, dispatch_uid="publishing.publish_anomalies")
