"""Public pages (per locale) and the public machine-readable formats."""

urlpatterns: list = []
localized_urlpatterns: list = []
