from django.urls import path

from audit.api import AuditEntryList

urlpatterns = [path("v1/audit/", AuditEntryList.as_view(), name="api-audit")]
