"""Routes of the JSON API under ``/api/v1/`` (see collector.api and the README).

Specific paths come before the ones with a variable segment (``fields/quota`` before
``fields/<id>``), and a catch-all answers JSON 404 for anything else under the API.
"""

from django.urls import path, re_path

from collector.api import collectors, common, destinations, fields, health, sources, status

app_name = "api"

urlpatterns = [
    path("status", status.status_view, name="status"),
    path("collectors", collectors.collectors, name="collectors"),
    path("collectors/name/<path:name>", collectors.collector_by_name, name="collector-by-name"),
    path("collectors/<int:collector_id>", collectors.collector, name="collector"),
    path("collectors/<int:collector_id>/sources", sources.sources, name="sources"),
    path("collectors/<int:collector_id>/sources/<int:source_id>", sources.source, name="source"),
    path(
        "collectors/<int:collector_id>/sources/<int:source_id>/action/restart",
        sources.restart,
        name="source-restart",
    ),
    path(
        "collectors/<int:collector_id>/sources/<int:source_id>/checkpoint/reset",
        sources.checkpoint_reset,
        name="source-checkpoint-reset",
    ),
    path("destinations", destinations.destinations, name="destinations"),
    path("destinations/<int:destination_id>", destinations.destination, name="destination"),
    path(
        "destinations/<int:destination_id>/action/test",
        destinations.test,
        name="destination-test",
    ),
    path(
        "destinations/<int:destination_id>/action/pause",
        destinations.pause,
        name="destination-pause",
    ),
    path(
        "destinations/<int:destination_id>/action/resume",
        destinations.resume,
        name="destination-resume",
    ),
    path("fields", fields.fields, name="fields"),
    path("fields/dropped", fields.dropped, name="fields-dropped"),
    path("fields/builtin", fields.builtin, name="fields-builtin"),
    path("fields/quota", fields.quota_view, name="fields-quota"),
    path("fields/<str:field_id>", fields.field, name="field"),
    path("fields/<str:field_id>/enable", fields.enable, name="field-enable"),
    path("fields/<str:field_id>/disable", fields.disable, name="field-disable"),
    path("healthEvents", health.events, name="health-events"),
    path("healthEvents/resources", health.resources, name="health-events-resources"),
    re_path(r"", common.unknown_route, name="unknown"),
]
