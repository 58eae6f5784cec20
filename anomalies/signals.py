"""Announced after anomaly events commit; the read side (live hubs, snapshot) and alerts listen."""

from django.dispatch import Signal

# Sent with `events`: the AnomalyEvent rows just committed, in id order.
anomalies_changed = Signal()
