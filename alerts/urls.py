"""The alerts API (/api/v1/alert-channels/)."""

from django.urls import path

from alerts.api import ChannelViewSet

channel_list = ChannelViewSet.as_view({"get": "list", "post": "create"})
channel_detail = ChannelViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)
channel_test = ChannelViewSet.as_view({"post": "test"})

urlpatterns = [
    path("v1/alert-channels/", channel_list, name="api-alert-channel-list"),
    path("v1/alert-channels/<int:pk>/", channel_detail, name="api-alert-channel-detail"),
    path("v1/alert-channels/<int:pk>/test/", channel_test, name="api-alert-channel-test"),
]
