"""The page's sign-up form: an address, what to follow (nothing ticked: the whole page), and a honeypot."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from monitoring.models import AIModel, Provider


class SubscribeForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254)
    providers = forms.MultipleChoiceField(label=_("Providers"), required=False, widget=forms.CheckboxSelectMultiple)
    models = forms.MultipleChoiceField(label=_("Models"), required=False, widget=forms.CheckboxSelectMultiple)
    # Hidden from people by the stylesheet; a bot that fills every field gets the same answer and no mail.
    website = forms.CharField(required=False, label=_("Leave this empty"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        providers = list(Provider.objects.filter(models__public=True).distinct().order_by("name"))
        self.fields["providers"].choices = [(p.slug, p.name) for p in providers]
        models = AIModel.objects.filter(public=True).select_related("provider").order_by("provider__name", "name")
        self.fields["models"].choices = [(m.public_slug, f"{m.provider.name} {m.name}") for m in models]

    @property
    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get("website"))
