from django.urls import path

from collector import views

app_name = "collector"

urlpatterns = [
    path("", views.collection, name="collection"),
]
