"""The alerts API (/api/v1/alert-channels/)."""

urlpatterns: list = []
