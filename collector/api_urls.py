from django.urls import path

from collector import api

app_name = "api"

urlpatterns = [
    path("status", api.status, name="status"),
]
