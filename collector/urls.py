from django.urls import path

from collector.views import collection, destinations, fields, health, keys, search, sources

app_name = "collector"

urlpatterns = [
    # Collection and hosted collectors
    path("", collection.collection, name="collection"),
    path("collection/status.json", collection.status_json, name="status_json"),
    path("collectors/add/", collection.collector_add, name="collector_add"),
    path("collectors/<int:pk>/edit/", collection.collector_edit, name="collector_edit"),
    path("collectors/<int:pk>/delete/", collection.collector_delete, name="collector_delete"),
    # Sources
    path("collectors/<int:pk>/sources/add/", sources.source_kinds, name="source_kinds"),
    path("collectors/<int:pk>/sources/add/<slug:kind>/", sources.source_add, name="source_add"),
    path(
        "collectors/<int:pk>/sources/test/<slug:kind>/",
        sources.source_test_new,
        name="source_test_new",
    ),
    path("sources/<int:pk>/", sources.source_detail, name="source_detail"),
    path("sources/<int:pk>/edit/", sources.source_edit, name="source_edit"),
    path("sources/<int:pk>/test/", sources.source_test_existing, name="source_test_existing"),
    path("sources/<int:pk>/json/", sources.source_json, name="source_json"),
    path("sources/<int:pk>/timeline/", sources.source_timeline, name="source_timeline"),
    path("sources/<int:pk>/delete/", sources.source_delete, name="source_delete"),
    path(
        "sources/<int:pk>/checkpoint/reset/",
        sources.source_checkpoint_reset,
        name="source_checkpoint_reset",
    ),
    path("sources/<int:pk>/<str:action>/", sources.source_action, name="source_action"),
    # Destinations
    path("destinations/", destinations.destinations, name="destinations"),
    path("destinations/add/", destinations.destination_kinds, name="destination_kinds"),
    path("destinations/add/<slug:kind>/", destinations.destination_add, name="destination_add"),
    path(
        "destinations/add/<slug:kind>/test/",
        destinations.destination_test_new,
        name="destination_test_new",
    ),
    path("destinations/<int:pk>/", destinations.destination_detail, name="destination_detail"),
    path("destinations/<int:pk>/edit/", destinations.destination_edit, name="destination_edit"),
    path(
        "destinations/<int:pk>/delete/", destinations.destination_delete, name="destination_delete"
    ),
    path(
        "destinations/<int:pk>/<str:action>/",
        destinations.destination_action,
        name="destination_action",
    ),
    # Health
    path("health-events/", health.health_events, name="health_events"),
    path("health/", health.health_status, name="health_status"),
    # Fields
    path("fields/", fields.fields, name="fields"),
    path("fields/add/", fields.field_add, name="field_add"),
    path("fields/check", sources.fields_check, name="fields_check"),
    path(
        "fields/<int:pk>/enable/",
        fields.field_enable,
        {"enabled": True},
        name="field_enable",
    ),
    path(
        "fields/<int:pk>/disable/",
        fields.field_enable,
        {"enabled": False},
        name="field_disable",
    ),
    path("fields/<int:pk>/delete/", fields.field_delete, name="field_delete"),
    path("fields/dropped/", fields.dropped_fields, name="dropped_fields"),
    path("fields/dropped/<int:pk>/create/", fields.dropped_create, name="dropped_create"),
    # Log Search and access keys
    path("search/", search.log_search, name="log_search"),
    path("access-keys/", keys.access_keys, name="access_keys"),
    path("access-keys/create/", keys.access_key_create, name="access_key_create"),
    path("access-keys/<int:pk>/revoke/", keys.access_key_revoke, name="access_key_revoke"),
]
