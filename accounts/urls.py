"""The two-factor pages, under /admin/2fa/."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("verify/", views.verify, name="two-factor-verify"),
    path("enroll/", views.enroll, name="two-factor-enroll"),
    path("passkey/", views.passkey, name="two-factor-passkey"),
]
