"""The subscriptions API and the pages its messages link to (under each language prefix)."""

from django.urls import path

from subscriptions import api, views

urlpatterns = [
    path("v1/subscriptions/", api.SubscriptionCreate.as_view(), name="api-subscriptions"),
]

localized_urlpatterns = [
    path("subscribe/", views.subscribe, name="subscriptions-subscribe"),
    path("subscriptions/confirm/<str:token>/", views.confirm_view, name="subscriptions-confirm"),
    path("subscriptions/manage/<str:token>/", views.manage_view, name="subscriptions-manage"),
    path("subscriptions/unsubscribe/<str:token>/", views.unsubscribe_view, name="subscriptions-unsubscribe"),
]
