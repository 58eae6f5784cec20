"""Every model has its status row from the moment it exists: the receiver that makes it on save.

Two guarantees, on purpose: this receiver covers every save through the ORM (raw saves from
fixtures included); the database trigger (migration 0002) covers what sends no signal at all,
bulk_create and raw SQL, in the model's own transaction. Whichever comes first makes the row; the
other finds it.
"""

from __future__ import annotations

from monitoring.models import AIModel, ModelStatus


def ensure_status_row(sender, instance: AIModel, created: bool, raw: bool = False, using: str = "default", **kwargs):
    if created:
        ModelStatus.objects.using(using).get_or_create(model_id=instance.pk)
