"""A list of `<provider>/<model>` names in a request, read into models; an unknown name is an error of that field."""

from __future__ import annotations

from django.db.models import Q
from rest_framework import serializers

from monitoring.models import AIModel


class ModelSlugsField(serializers.ListField):
    """["openai/gpt-4o", ...] in and out; unknown names are refused, listed by name."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("child", serializers.CharField(max_length=201))
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault("help_text", 'Affected models as "<provider>/<model>".')
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> list[AIModel]:
        names = list(dict.fromkeys(super().to_internal_value(data)))
        wanted = Q(pk__in=[])
        for name in names:
            provider, _, model = name.partition("/")
            wanted |= Q(provider__slug=provider, slug=model)
        found = {m.public_slug: m for m in AIModel.objects.select_related("provider").filter(wanted)} if names else {}
        unknown = [name for name in names if name not in found]
        if unknown:
            raise serializers.ValidationError(f"No such model: {', '.join(unknown)} (use <provider>/<model>).")
        return [found[name] for name in names]

    def to_representation(self, value) -> list[str]:
        models = value.all() if hasattr(value, "all") else value
        return sorted(m.public_slug for m in models)
