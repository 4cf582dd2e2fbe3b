"""``/api/v1/destinations`` (sumo-api.md, Destinations) and the destinations of ``/api/v1/status``.

Only the file kind (tests.support.file_destination) is installed: its config is ``{"path": ...}``
and its secret ``token``. Every refusal is a 4xx in the Collector Management error shape with a
message that names the bad key.
"""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from collector.auth import create_access_key
from collector.buckets import bucket_floor
from collector.choices import DestinationState, Severity
from collector.crypto import MASK
from collector.models import DeliveryBucket, Destination, HealthEvent, Message
from tests.api.test_api import Api, basic, fresh, legacy_error
from tests.support.file_destination import PATH, delivered
from tests.support.messages import make_messages

TOKEN = "tok-SECRET-value-123"
NEW_TOKEN = "tok-NEW-value-456"
DELIVERY_KEYS = {
    "backlog",
    "oldestUndelivered",
    "deliveredLastHour",
    "deliveredTotal",
    "lastSuccess",
}


@pytest.fixture(autouse=True)
def file_kind_only(settings):
    settings.DESTINATION_KINDS = [PATH]


@pytest.fixture
def out(tmp_path):
    return tmp_path / "delivered.ndjson"


def body(out, **overrides) -> dict:
    """A create body; ``None`` removes a key, ``config`` overrides are merged."""
    config = {"path": str(out), "token": TOKEN, **overrides.pop("config", {})}
    destination = {
        "name": "SOC file",
        "description": "to the SOC",
        "destinationType": "TestFile",
        "siem": True,
        "route": "_sourceCategory=sophos/*",
        "startFrom": "new",
        "config": {key: value for key, value in config.items() if value is not None},
    }
    destination.update(overrides)
    return {"destination": {k: v for k, v in destination.items() if v is not None}}


@pytest.fixture
def created(admin_api, out):
    response = admin_api.post("/destinations", body(out))
    assert response.status_code == 200, response.content
    return Destination.objects.get(pk=response.json()["destination"]["id"])


def path_of(destination) -> str:
    return f"/destinations/{destination.pk}"


def no_secret(response) -> None:
    text = response.content.decode()
    assert TOKEN not in text and NEW_TOKEN not in text


# --- create and read --------------------------------------------------------------------------
def test_create_answers_the_stored_destination_with_id_state_and_delivery(admin_api, out):
    make_messages(2)
    response = admin_api.post("/destinations", body(out))
    assert response.status_code == 200, response.content
    assert response["ETag"]
    no_secret(response)
    answer = response.json()["destination"]
    stored = Destination.objects.get()
    assert answer == {
        "id": stored.pk,
        "name": "SOC file",
        "description": "to the SOC",
        "destinationType": "TestFile",
        "siem": True,
        "route": "_sourceCategory=sophos/*",
        "config": {"path": str(out), "token": MASK},
        "state": {"state": "Pending"},
        "delivery": {
            "backlog": 0,
            "oldestUndelivered": None,
            "deliveredLastHour": 0,
            "deliveredTotal": 0,
            "lastSuccess": None,
        },
    }
    assert stored.get_secret().reveal() == TOKEN
    assert stored.cursor == Message.objects.order_by("-id").first().pk  # startFrom new


def test_create_from_all_data_counts_the_stored_messages_as_backlog(admin_api, out):
    make_messages(3, minutes_ago=10)
    answer = admin_api.post("/destinations", body(out, startFrom="all", siem=False, route=""))
    delivery = answer.json()["destination"]["delivery"]
    assert delivery["backlog"] == 3 and delivery["oldestUndelivered"].endswith("Z")
    assert Destination.objects.get().cursor == 0


def test_get_list_and_if_none_match(admin_api, viewer_api, created):
    for api in (admin_api, viewer_api):
        one = api.get(path_of(created))
        assert one.status_code == 200 and one.json()["destination"]["id"] == created.pk
        no_secret(one)
        assert set(one.json()["destination"]["delivery"]) == DELIVERY_KEYS
        listed = api.get("/destinations")
        assert [d["id"] for d in listed.json()["destinations"]] == [created.pk]
        no_secret(listed)
    etag = admin_api.get(path_of(created))["ETag"]
    assert admin_api.get(path_of(created), if_none_match=etag).status_code == 304


def test_delivery_figures_come_from_the_stored_rows(admin_api):
    make_messages(5, minutes_ago=20)
    first = Message.objects.order_by("id").first()
    moment = timezone.now()
    destination = Destination.objects.create(
        name="Behind", kind="TestFile", config={"path": "/tmp/x"}, cursor=first.pk,
        delivered_total=530, last_success_at=moment, state=DestinationState.DELIVERING,
    )  # fmt: skip
    DeliveryBucket.objects.create(destination=destination, start=bucket_floor(moment), messages=7)
    delivery = admin_api.get(path_of(destination)).json()["destination"]["delivery"]
    assert delivery["backlog"] == 4
    assert delivery["deliveredLastHour"] == 7 and delivery["deliveredTotal"] == 530
    assert delivery["lastSuccess"].endswith("Z") and delivery["oldestUndelivered"].endswith("Z")


# --- update ------------------------------------------------------------------------------------
def test_put_round_trip_with_if_match_and_the_masked_secret(admin_api, created, out):
    got = admin_api.get(path_of(created))
    edited = fresh(got)
    edited["destination"]["route"] = "_collector=EU"
    edited["destination"]["name"] = "SOC renamed"
    assert edited["destination"]["config"]["token"] == MASK
    legacy_error(admin_api.put(path_of(created), edited), 403, "forbidden")
    legacy_error(
        admin_api.put(path_of(created), edited, if_match='"stale"'), 412, "precondition.failed"
    )
    response = admin_api.put(path_of(created), edited, if_match=got["ETag"])
    assert response.status_code == 200, response.content
    no_secret(response)
    answer = response.json()["destination"]
    assert answer["route"] == "_collector=EU" and answer["name"] == "SOC renamed"
    assert answer["state"]["state"] == "Pending"
    created.refresh_from_db()
    assert created.get_secret().reveal() == TOKEN  # ******** kept it
    # The old ETag is stale now; a new secret changes the ETag too.
    legacy_error(
        admin_api.put(path_of(created), edited, if_match=got["ETag"]), 412, "precondition.failed"
    )
    edited["destination"]["config"]["token"] = NEW_TOKEN
    again = admin_api.put(path_of(created), edited, if_match=response["ETag"])
    assert again.status_code == 200 and again["ETag"] != response["ETag"]
    created.refresh_from_db()
    assert created.get_secret().reveal() == NEW_TOKEN


def test_put_cannot_change_the_destination_type(admin_api, created):
    got = admin_api.get(path_of(created))
    edited = fresh(got)
    edited["destination"]["destinationType"] = "Syslog"
    message = legacy_error(
        admin_api.put(path_of(created), edited, if_match=got["ETag"]), 400, "InvalidDestinationType"
    )
    assert "destination.destinationType 'Syslog' is not a known destination type" in message
    # A type that is installed but different is refused as a change.
    from collector.destinations import register, unregister
    from tests.support.file_destination import FileKind

    other = type("OtherFileKind", (FileKind,), {"name": "OtherFile"})()
    register(other)
    try:
        edited["destination"]["destinationType"] = "OtherFile"
        message = legacy_error(
            admin_api.put(path_of(created), edited, if_match=got["ETag"]),
            400,
            "updateValidationError",
        )
    finally:
        unregister("OtherFile")
    assert message == "destination.destinationType cannot change: this destination is 'TestFile'."
    assert Destination.objects.get(pk=created.pk).kind == "TestFile"


def test_put_needs_the_id_of_the_url(admin_api, created):
    got = admin_api.get(path_of(created))
    edited = fresh(got)
    edited["destination"]["id"] = created.pk + 1
    message = legacy_error(
        admin_api.put(path_of(created), edited, if_match=got["ETag"]), 400, "updateValidationError"
    )
    assert f"destination.id must be {created.pk}" in message


def test_put_refuses_a_bad_route_and_changes_nothing(admin_api, created):
    got = admin_api.get(path_of(created))
    edited = fresh(got)
    edited["destination"]["route"] = "foo=bar"
    message = legacy_error(
        admin_api.put(path_of(created), edited, if_match=got["ETag"]), 400, "updateValidationError"
    )
    assert message.startswith("destination.route: Unknown key 'foo' in the route")
    assert Destination.objects.get(pk=created.pk).route == "_sourceCategory=sophos/*"


# --- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "code", "words"),
    [
        ({"destinationType": None}, "EmptyDestinationType", "destination.destinationType is required"),
        ({"destinationType": "Nope"}, "InvalidDestinationType", "'Nope' is not a known"),
        ({"destinationType": 3}, "InvalidDestinationType", "must be a string"),
        ({"route": "foo=bar"}, "createValidationError", "destination.route: Unknown key 'foo'"),
        ({"name": ""}, "createValidationError", "destination.name: This field is required."),
        ({"name": 5}, "createValidationError", "destination.name must be a string."),
        ({"siem": "yes"}, "createValidationError", "destination.siem must be true or false."),
        ({"startFrom": "yesterday"}, "createValidationError", 'destination.startFrom must be "new"'),
        ({"config": {"path": None}}, "createValidationError", "destination.config.path: This field is required."),
        ({"config": {"port": 1}}, "createValidationError", "Unknown key destination.config.port"),
        ({"config": {"path": 7}}, "createValidationError", "destination.config.path must be a string."),
        ({"paused": True}, "createValidationError", "Unknown key destination.paused"),
    ],
)  # fmt: skip
def test_create_refuses_bad_input_naming_the_key(admin_api, out, overrides, code, words):
    status = 400
    message = legacy_error(admin_api.post("/destinations", body(out, **overrides)), status, code)
    assert words in message
    assert not Destination.objects.exists()


def test_create_refuses_a_name_that_differs_only_by_case(admin_api, created, out):
    message = legacy_error(
        admin_api.post("/destinations", body(out, name="soc FILE")), 400, "DuplicateResourceName"
    )
    assert message == "destination.name: A destination named 'SOC file' already exists."


def test_create_refuses_malformed_bodies(admin_api):
    message = legacy_error(
        admin_api.post("/destinations", {"destinations": []}), 400, "createValidationError"
    )
    assert message == "Unknown key body.destinations; known keys are: destination."
    message = legacy_error(
        admin_api.post("/destinations", {"destination": []}), 400, "createValidationError"
    )
    assert message == "destination must be a JSON object."
    legacy_error(
        admin_api.post("/destinations", raw="{not json", content_type="application/json"),
        400,
        "invalid.request",
    )
    legacy_error(
        admin_api.post("/destinations", raw="{}", content_type="text/plain"),
        415,
        "contenttype.invalid",
    )


def test_unknown_ids_are_404(admin_api):
    legacy_error(admin_api.get("/destinations/999"), 404, "notfound")
    legacy_error(admin_api.get(f"/destinations/{2**70}"), 404, "notfound")
    legacy_error(admin_api.post("/destinations/999/action/test"), 404, "notfound")
    legacy_error(admin_api.delete("/destinations/999"), 404, "notfound")
    legacy_error(admin_api.get("/destinations/1/action/nope"), 404, "notfound")


def test_methods_permissions_and_authentication(admin_api, viewer_api, created, out):
    legacy_error(Api(Client(), None).get("/destinations"), 401, "unauthorized")
    legacy_error(admin_api.call("PATCH", path_of(created), {}), 405, "method.unsupported")
    legacy_error(admin_api.get(path_of(created) + "/action/pause"), 405, "method.unsupported")
    etag = viewer_api.get(path_of(created))["ETag"]
    edited = fresh(viewer_api.get(path_of(created)))
    assert "may not add destination" in legacy_error(
        viewer_api.post("/destinations", body(out, name="X")), 403, "forbidden"
    )
    legacy_error(viewer_api.put(path_of(created), edited, if_match=etag), 403, "forbidden")
    legacy_error(viewer_api.delete(path_of(created)), 403, "forbidden")
    for action in ("test", "pause", "resume"):
        legacy_error(viewer_api.post(f"{path_of(created)}/action/{action}"), 403, "forbidden")
    assert Destination.objects.count() == 1 and not created.paused and delivered(out) == []


# --- actions and delete -------------------------------------------------------------------------
def test_test_action_answers_what_the_receiver_said(admin_api, created, out):
    response = admin_api.post(f"{path_of(created)}/action/test")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "message": "Sent a test message by admin. The receiver answered: 1 lines written.",
    }
    assert delivered(out)[0]["test"] is True
    out.with_suffix(".fail").write_text("503")
    response = admin_api.post(f"{path_of(created)}/action/test")
    assert response.json() == {
        "ok": False,
        "message": "The receiver answered 503. It retries by itself.",
    }


def test_pause_and_resume(admin_api, created):
    paused = admin_api.post(f"{path_of(created)}/action/pause")
    assert paused.status_code == 200 and paused.json()["destination"]["state"] == {
        "state": "Paused"
    }
    assert Destination.objects.get(pk=created.pk).paused
    resumed = admin_api.post(f"{path_of(created)}/action/resume")
    assert resumed.json()["destination"]["state"] == {"state": "Pending"}
    assert not Destination.objects.get(pk=created.pk).paused


def test_delete_answers_200_with_an_empty_body(admin_api, created):
    make_messages(2)
    response = admin_api.delete(path_of(created))
    assert response.status_code == 200 and response.content == b""
    legacy_error(admin_api.get(path_of(created)), 404, "notfound")
    assert Message.objects.count() == 2


# --- /status -----------------------------------------------------------------------------------
def test_status_includes_destinations_with_their_figures(admin_api, viewer_api, out):
    make_messages(3)
    destination = Destination.objects.create(
        name="SOC", kind="TestFile", config={"path": str(out)}, state=DestinationState.DELIVERING,
        delivered_total=12,
    )  # fmt: skip
    destination.set_secret(TOKEN)
    destination.save()
    DeliveryBucket.objects.create(
        destination=destination, start=bucket_floor(timezone.now()), messages=5
    )
    HealthEvent.objects.create(
        event_name="ThirdPartyGenericError", severity=Severity.WARNING,
        resource_type="Destination", resource_id=str(destination.pk), resource_name="SOC",
        details={"error": "The receiver answered 503.", "retrying": True},
    )  # fmt: skip
    for api in (admin_api, viewer_api):
        response = api.get("/status")
        no_secret(response)
        answer = response.json()
        (entry,) = answer["destinations"]
        assert entry["id"] == destination.pk and entry["destinationType"] == "TestFile"
        assert entry["state"] == "Delivering" and entry["health"]["value"] == "Warning"
        assert "Warning: The receiver answered 503." in entry["health"]["tooltip"]
        api_delivery = api.get(path_of(destination)).json()["destination"]["delivery"]
        assert entry["delivery"] == api_delivery
        assert api_delivery["backlog"] == 3 and api_delivery["deliveredLastHour"] == 5
        assert answer["totals"]["destinations"] == 1
        assert answer["totals"]["destinationsByState"]["Delivering"] == 1


def test_status_leaves_destinations_out_without_the_view_permission(db, out):
    Destination.objects.create(name="SOC", kind="TestFile", config={"path": str(out)})
    user = User.objects.create_user("sources-only", password="x-pass-123456")
    user.user_permissions.set(Permission.objects.filter(codename="view_source"))
    row, key = create_access_key(user=user)
    answer = Api(Client(), basic(row.access_id, key)).get("/status").json()
    assert "destinations" not in answer and "destinations" not in answer["totals"]


def test_list_and_status_cost_two_queries_per_destination(admin_api, out):
    make_messages(2)

    def add(start, count):
        for n in range(start, start + count):
            Destination.objects.create(name=f"D{n}", kind="TestFile", config={"path": str(out)})

    add(0, 1)
    admin_api.get("/destinations")  # the first use of a key records last_used_at
    one = {}
    for path in ("/destinations", "/status"):
        with CaptureQueriesContext(connection) as queries:
            assert admin_api.get(path).status_code == 200
        one[path] = len(queries.captured_queries)
    add(1, 3)
    for path in ("/destinations", "/status"):
        with CaptureQueriesContext(connection) as queries:
            assert len(admin_api.get(path).json()["destinations"]) == 4
        assert len(queries.captured_queries) == one[path] + 3 * 2, path


def test_no_secret_in_any_answer(admin_api, created, out):
    answers = [
        admin_api.get("/destinations"),
        admin_api.get(path_of(created)),
        admin_api.post(f"{path_of(created)}/action/pause"),
        admin_api.post(f"{path_of(created)}/action/resume"),
        admin_api.get("/status"),
        admin_api.get("/healthEvents"),
    ]
    for response in answers:
        no_secret(response)
        assert created.secret_encrypted not in response.content.decode()
    assert json.loads(answers[1].content)["destination"]["config"]["token"] == MASK


@pytest.mark.parametrize(
    "kind, config",
    [
        ("Webhook", {"url": "http://127.0.0.1:9/hook", "payload": "ndjson", "auth": "bearer",
                     "token": "hook-token-1", "headers": {"X-Team": "soc"}, "gzip": True}),
        ("SplunkHEC", {"url": "http://127.0.0.1:9", "index": "main", "sourcetype": "sophos",
                       "token": "hec-token-1", "ack": False}),
    ],
)  # fmt: skip
def test_real_kinds_round_trip_their_typed_keys(admin_api, settings, kind, config):
    settings.DESTINATION_KINDS = [
        "collector.destinations.webhook.WebhookKind",
        "collector.destinations.splunk_hec.SplunkHECKind",
    ]
    body = {"destination": {"name": f"{kind} one", "destinationType": kind, "config": config}}
    created = admin_api.post("/destinations", body)
    assert created.status_code == 200, created.content
    answer = created.json()["destination"]["config"]
    assert answer["token"] == "********" and "token-1" not in created.content.decode()
    for key, value in config.items():
        if key != "token":
            assert answer[key] == value, key
    wrong = {**config, next(k for k, v in config.items() if isinstance(v, bool)): "yes"}
    refused = admin_api.post("/destinations", {"destination": {**body["destination"],
                             "name": "other", "config": wrong}})  # fmt: skip
    assert refused.status_code == 400 and "true or false" in refused.json()["message"]
