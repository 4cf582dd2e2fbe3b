"""The JSON API (sumo-api.md): conventions, collectors, sources, fields and health events.

Every call goes through the real URL routing with an access key (or a session where that is the
point). ``collector.engine.lifecycle.enqueue`` is replaced by a recorder, so no broker is needed and a test
can see which runs were requested.
"""

import base64
import datetime as dt
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from collector import engine
from collector.auth import create_access_key, revoke_access_key
from collector.choices import SourceState
from collector.crypto import MASK
from collector.models import Collector, DroppedField, Field, HealthEvent, Source
from collector.validators import BUILTIN_FIELDS, MAX_CUSTOM_FIELDS

BASE = "/api/v1"
SECRET = "s3cret-value-XYZ"
NEW_SECRET = "another-Secret-789"


# --- helpers ----------------------------------------------------------------------------------
def basic(access_id: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{access_id}:{key}".encode()).decode()


class Api:
    """A test client speaking JSON with one Authorization header (or none, for the session)."""

    def __init__(self, client: Client, authorization: str | None):
        self.client = client
        self.authorization = authorization

    def call(
        self, method, path, body=None, *, raw=None, content_type="application/json", **headers
    ):
        if self.authorization:
            headers.setdefault("authorization", self.authorization)
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(
            method, BASE + path, data=data, content_type=content_type, headers=headers
        )

    def get(self, path, **headers):
        return self.call("GET", path, **headers)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.call("PUT", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.call("DELETE", path, **kwargs)


def fresh(response) -> dict:
    """A new copy of a response's JSON to edit (``response.json()`` is cached and shared)."""
    return json.loads(response.content)


def legacy_error(response, status: int, code: str) -> str:
    """Assert the Collector Management error shape; returns the message."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"status", "id", "code", "message"}
    assert body["status"] == status
    assert body["code"] == code
    assert len(body["id"]) == 17 and body["id"].count("-") == 2
    return body["message"]


def errors_error(response, status: int, code: str) -> str:
    """Assert the Fields / Health Events error shape; returns the message."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"id", "errors"}
    assert len(body["id"]) == 17
    (error,) = body["errors"]
    assert error["code"] == code
    return error["message"]


def seed_source(**config) -> dict:
    """The seed's create body, with config overrides (None removes a key)."""
    base = {
        "name": "Sophos",
        "description": "East field",
        "category": "eastTeamF",
        "fields": {"_siemForward": False},
        "clientId": "client-abc",
        "clientSecret": SECRET,
        "supported_apis": ["Events", "Alerts"],
        "pollingInterval": 300,
    }
    base.update(config)
    base = {key: value for key, value in base.items() if value is not None}
    return {
        "api.version": "v1",
        "source": {
            "schemaRef": {"type": "Sophos Central"},
            "sourceType": "Universal",
            "config": base,
        },
    }


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def enqueued(queued):
    """Every API test runs without a broker; the tasks it asked for are in this list."""
    return queued


@pytest.fixture
def admin_api(client, admin_user):
    row, key = create_access_key(user=admin_user, label="tests")
    return Api(client, basic(row.access_id, key))


@pytest.fixture
def viewer_api(db, viewer_user):
    row, key = create_access_key(user=viewer_user, label="tests")
    return Api(Client(), basic(row.access_id, key))


@pytest.fixture
def collector(make_collector):
    return make_collector("Hosted EU", description="EU sources", fields={"team": "east"})


@pytest.fixture
def source(make_source, collector):
    return make_source("Sophos East", collector=collector, secret=SECRET)


def source_path(source: Source) -> str:
    return f"/collectors/{source.collector_id}/sources/{source.pk}"


# === conventions ==============================================================================
class TestAuthentication:
    def test_no_credentials_is_401_with_a_basic_challenge(self, db, client):
        response = Api(client, None).get("/collectors")
        message = legacy_error(response, 401, "unauthorized")
        assert "HTTP Basic" in message
        assert response["WWW-Authenticate"].startswith("Basic ")

    @pytest.mark.parametrize(
        "header",
        [
            "Basic " + base64.b64encode(b"nope:nope").decode(),
            "Basic " + base64.b64encode(b"su\x00id:key").decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:key").decode(),
            "Basic !!!",
            "Bearer abc",
            "Basic ",
        ],
    )
    def test_wrong_or_malformed_key_is_401(self, admin_user, client, header):
        message = legacy_error(Api(client, header).get("/collectors"), 401, "unauthorized")
        assert "access id or access key is wrong" in message

    def test_right_id_with_wrong_key_is_401(self, admin_user, client):
        row, _ = create_access_key(user=admin_user)
        response = Api(client, basic(row.access_id, "wrong")).get("/collectors")
        legacy_error(response, 401, "unauthorized")

    def test_revoked_key_and_inactive_user_are_401(self, admin_user, client):
        row, key = create_access_key(user=admin_user)
        api = Api(client, basic(row.access_id, key))
        assert api.get("/collectors").status_code == 200
        revoke_access_key(access_key=row)
        legacy_error(api.get("/collectors"), 401, "unauthorized")
        row2, key2 = create_access_key(user=admin_user)
        User.objects.filter(pk=admin_user.pk).update(is_active=False)
        legacy_error(
            Api(client, basic(row2.access_id, key2)).get("/collectors"), 401, "unauthorized"
        )

    def test_fields_and_health_answer_401_in_the_newer_shape(self, db, client):
        errors_error(Api(client, None).get("/fields"), 401, "unauthorized")
        errors_error(Api(client, None).get("/healthEvents"), 401, "unauthorized")

    def test_session_works_without_a_challenge(self, admin_client, collector):
        response = Api(admin_client, None).get("/collectors")
        assert response.status_code == 200
        assert [c["name"] for c in response.json()["collectors"]] == ["Hosted EU"]

    def test_expired_session_gets_no_basic_challenge(self, db, client):
        client.cookies["sessionid"] = "expired"
        response = Api(client, None).get("/collectors")
        legacy_error(response, 401, "unauthorized")
        assert "WWW-Authenticate" not in response

    def test_management_command_prints_a_working_key(self, admin_user, client, capsys):
        call_command("create_access_key", "admin")
        line = capsys.readouterr().out.strip()
        access_id, key = line.split(" ")
        assert access_id.startswith("su")
        assert Api(client, basic(access_id, key)).get("/collectors").status_code == 200

    def test_management_command_refuses_an_unknown_user(self, db):
        with pytest.raises(CommandError, match="nobody"):
            call_command("create_access_key", "nobody")


class TestCsrf:
    body = {"collector": {"collectorType": "Hosted", "name": "Via session"}}

    @pytest.fixture
    def csrf_client(self, admin_user):
        client = Client(enforce_csrf_checks=True)
        client.force_login(admin_user)
        return client

    def test_session_post_without_token_is_403(self, csrf_client):
        response = Api(csrf_client, None).post("/collectors", self.body)
        assert "CSRF" in legacy_error(response, 403, "forbidden")
        assert not Collector.objects.exists()

    def test_session_post_with_token_passes(self, csrf_client):
        token = "a" * 32  # the cookie's secret; a page would have set one like it
        csrf_client.cookies["csrftoken"] = token
        response = Api(csrf_client, None).post("/collectors", self.body, x_csrftoken=token)
        assert response.status_code == 200, response.content
        assert Collector.objects.filter(name="Via session").exists()

    def test_session_form_post_with_token_is_415(self, csrf_client):
        token = "a" * 32
        csrf_client.cookies["csrftoken"] = token
        response = csrf_client.post(
            BASE + "/collectors", {"csrfmiddlewaretoken": token, "name": "Form"}
        )
        legacy_error(response, 415, "contenttype.invalid")
        assert not Collector.objects.exists()

    def test_session_get_needs_no_token(self, csrf_client):
        assert Api(csrf_client, None).get("/collectors").status_code == 200

    def test_basic_auth_is_exempt(self, admin_user):
        row, key = create_access_key(user=admin_user)
        api = Api(Client(enforce_csrf_checks=True), basic(row.access_id, key))
        assert api.post("/collectors", self.body).status_code == 200

    def test_basic_auth_from_a_foreign_origin_is_403(self, admin_api):
        response = admin_api.post("/collectors", self.body, origin="https://evil.example")
        assert "Cross-site" in legacy_error(response, 403, "forbidden")
        same = admin_api.post("/collectors", self.body, origin="http://testserver")
        assert same.status_code == 200


class TestRequests:
    def test_unsupported_method_is_405_with_allow(self, admin_api, collector):
        response = admin_api.call("PATCH", f"/collectors/{collector.pk}")
        legacy_error(response, 405, "method.unsupported")
        assert response["Allow"] == "DELETE, GET, PUT"

    def test_wrong_content_type_is_415(self, admin_api):
        response = admin_api.post("/collectors", raw="name=x", content_type="text/plain")
        assert "application/json" in legacy_error(response, 415, "contenttype.invalid")
        response = admin_api.post(
            "/collectors", raw="{}", content_type="application/json; charset=latin-1"
        )
        legacy_error(response, 415, "contenttype.invalid")

    def test_oversized_body_is_413(self, admin_api):
        big = {"collector": {"name": "x", "description": "d" * (1024 * 1024)}}
        legacy_error(admin_api.post("/collectors", big), 413, "request.too.large")

    @pytest.mark.parametrize(
        ("raw", "fragment"),
        [
            (b'{"collector": {"name": "\xff"}}', "UTF-8"),
            (b"{not json", "not valid JSON"),
            (b"", "empty"),
            (b"[1, 2]", "JSON object"),
            (b'{"collector": 1, "collector": 2}', "twice"),
            (b'{"collector": NaN}', "NaN"),
            (b"[" * 100000 + b"]" * 100000, "nested"),
            (b'{"collector": {"name": "a\\u0000b"}}', "NUL"),
            (b'{"collector": {"name": "\\ud800"}}', "surrogate"),
        ],
    )
    def test_bad_bodies_are_400(self, admin_api, raw, fragment):
        response = admin_api.post("/collectors", raw=raw)
        message = legacy_error(response, 400, "invalid.request")
        assert fragment in message
        assert not Collector.objects.exists()

    @pytest.mark.parametrize(
        "path",
        [
            "/nothing",
            "/collectors/abc",
            "/collectors/-1",
            "/collectors/99999999999999999999999",
            "/collectors/99999999999999999999999/sources/1",
            "/collectors/",
        ],
    )
    def test_unknown_paths_and_ids_are_json_404(self, admin_api, path):
        legacy_error(admin_api.get(path), 404, "notfound")

    def test_unexpected_errors_are_500_without_a_trace(self, admin_api, monkeypatch, caplog):
        from collector import services

        def broken(**kwargs):
            raise RuntimeError("database on fire")

        monkeypatch.setattr(services, "create_collector", broken)
        response = admin_api.post("/collectors", {"collector": {"name": "X"}})
        message = legacy_error(response, 500, "internal.error")
        assert response.json()["id"] in message
        assert "fire" not in response.content.decode()
        assert "Traceback" not in response.content.decode()
        assert any(response.json()["id"] in r.getMessage() for r in caplog.records)


# === collectors ===============================================================================
class TestCollectors:
    body = {
        "collector": {
            "collectorType": "Hosted",
            "name": "My Hosted Collector",
            "description": "An example Hosted Collector",
            "category": "HTTP Collection",
            "fields": {"_budget": "test_budget"},
            "timeZone": "UTC",
        }
    }

    def test_create_answers_the_stored_collector(self, admin_api, admin_user):
        response = admin_api.post("/collectors", self.body)
        assert response.status_code == 200, response.content
        body = response.json()["collector"]
        stored = Collector.objects.get()
        assert stored.created_by == admin_user
        assert body == {
            "id": stored.pk,
            "name": "My Hosted Collector",
            "description": "An example Hosted Collector",
            "category": "HTTP Collection",
            "timeZone": "UTC",
            "fields": {"_budget": "test_budget"},
            "links": [{"rel": "sources", "href": f"/v1/collectors/{stored.pk}/sources"}],
            "collectorType": "Hosted",
            "collectorVersion": "",
            "lastSeenAlive": body["lastSeenAlive"],
            "alive": True,
        }
        now_ms = timezone.now().timestamp() * 1000
        assert abs(body["lastSeenAlive"] - now_ms) < 60_000
        assert response["ETag"].startswith('"')

    def test_list_get_and_by_name(self, admin_api, make_collector):
        a = make_collector("A/with slash")
        b = make_collector("B b")
        listed = admin_api.get("/collectors?filter=hosted").json()["collectors"]
        assert [c["id"] for c in listed] == [a.pk, b.pk]
        single = admin_api.get(f"/collectors/{b.pk}")
        assert single.json()["collector"]["name"] == "B b"
        assert single["ETag"]
        by_name = admin_api.get("/collectors/name/A%2Fwith%20slash")
        assert by_name.json()["collector"]["id"] == a.pk
        assert by_name["ETag"] == admin_api.get(f"/collectors/{a.pk}")["ETag"]
        legacy_error(admin_api.get("/collectors/name/nope"), 404, "notfound")
        legacy_error(admin_api.get("/collectors/name/a%00b"), 404, "notfound")
        legacy_error(admin_api.get(f"/collectors/{b.pk + 100}"), 404, "notfound")

    def test_limit_offset_and_filters(self, admin_api, make_collector):
        made = [make_collector(f"C{i:02}") for i in range(5)]
        page = admin_api.get("/collectors?limit=2&offset=1").json()["collectors"]
        assert [c["id"] for c in page] == [made[1].pk, made[2].pk]
        assert admin_api.get("/collectors?filter=installed").json() == {"collectors": []}
        assert admin_api.get("/collectors?filter=dead").json() == {"collectors": []}
        assert len(admin_api.get("/collectors?filter=alive").json()["collectors"]) == 5
        for query in ("limit=0", "limit=1001", "limit=x", "offset=-1", "filter=weird"):
            message = legacy_error(admin_api.get(f"/collectors?{query}"), 400, "invalid.request")
            assert query.split("=")[0] in message

    @pytest.mark.parametrize(
        ("change", "code", "fragment"),
        [
            ({"name": None}, "collectors.validation", "collector.name: This field is required"),
            ({"name": "n" * 129}, "collectors.validation", "collector.name"),
            ({"description": "d" * 1025}, "collectors.validation", "collector.description"),
            ({"name": 5}, "collectors.validation", "collector.name must be a string"),
            ({"fields": ["a"]}, "collectors.validation", "collector.fields must be a JSON object"),
            ({"fields": {"1bad": "x"}}, "collectors.validation", "collector.fields"),
            ({"fields": {"team": ["x"]}}, "collectors.validation", "must be text"),
            ({"timeZone": "Mars/Base"}, "collectors.validation", "collector.timeZone"),
            ({"timeZone": 3}, "collectors.validation", "collector.timeZone must be a string"),
            ({"collectorType": "Installed"}, "collectors.validation", "collectorType"),
            ({"hostName": "x"}, "collectors.validation", "Unknown key collector.hostName"),
        ],
    )
    def test_invalid_collectors_are_400_naming_the_field(self, admin_api, change, code, fragment):
        collector = {**self.body["collector"], **change}
        collector = {key: value for key, value in collector.items() if value is not None}
        message = legacy_error(admin_api.post("/collectors", {"collector": collector}), 400, code)
        assert fragment in message
        assert not Collector.objects.exists()

    def test_missing_envelope_and_unknown_top_level_keys(self, admin_api):
        message = legacy_error(admin_api.post("/collectors", {}), 400, "collectors.validation")
        assert "collector must be a JSON object" in message
        legacy_error(
            admin_api.post("/collectors", {"collector": {"name": "a"}, "extra": 1}),
            400,
            "collectors.validation",
        )

    def test_duplicate_name_is_duplicate_resource_name(self, admin_api, make_collector):
        make_collector("My Hosted Collector")
        message = legacy_error(
            admin_api.post("/collectors", self.body), 400, "DuplicateResourceName"
        )
        assert "collector.name" in message

    def test_get_edit_put_round_trip(self, admin_api, collector):
        got = admin_api.get(f"/collectors/{collector.pk}")
        edited = fresh(got)
        edited["collector"]["description"] = "edited"
        response = admin_api.put(f"/collectors/{collector.pk}", edited, if_match=got["ETag"])
        assert response.status_code == 200, response.content
        assert response.json()["collector"]["description"] == "edited"
        assert response["ETag"] != got["ETag"]
        collector.refresh_from_db()
        assert collector.description == "edited"
        assert collector.fields == {"team": "east"}

    def test_put_needs_if_match_and_refuses_stale(self, admin_api, collector):
        got = admin_api.get(f"/collectors/{collector.pk}")
        body = fresh(got)
        body["collector"]["name"] = "Renamed"
        path = f"/collectors/{collector.pk}"
        assert "If-Match" in legacy_error(admin_api.put(path, body), 403, "forbidden")
        legacy_error(admin_api.put(path, body, if_match='"stale"'), 412, "precondition.failed")
        Collector.objects.filter(pk=collector.pk).update(category="changed elsewhere")
        legacy_error(admin_api.put(path, body, if_match=got["ETag"]), 412, "precondition.failed")
        collector.refresh_from_db()
        assert collector.name == "Hosted EU"
        current = admin_api.get(path)
        body["collector"]["category"] = "changed elsewhere"
        assert admin_api.put(path, body, if_match=current["ETag"]).status_code == 200
        collector.refresh_from_db()
        assert collector.name == "Renamed"

    def test_put_accepts_weak_and_unquoted_etags_and_star(self, admin_api, collector):
        path = f"/collectors/{collector.pk}"
        body = fresh(admin_api.get(path))
        for variant in ("W/{}", "{}", "*"):
            etag = admin_api.get(path)["ETag"]
            tag = variant.format(etag) if variant != "{}" else etag.strip('"')
            body["collector"]["description"] = f"via {variant}"
            assert admin_api.put(path, body, if_match=tag).status_code == 200

    def test_put_body_must_carry_the_url_id(self, admin_api, collector):
        got = admin_api.get(f"/collectors/{collector.pk}")
        for bad_id in (None, collector.pk + 1, str(collector.pk), True):
            body = fresh(got)
            body["collector"]["id"] = bad_id
            response = admin_api.put(f"/collectors/{collector.pk}", body, if_match=got["ETag"])
            assert "collector.id" in legacy_error(response, 400, "collectors.validation")

    def test_put_to_a_taken_name_is_duplicate(self, admin_api, collector, make_collector):
        make_collector("Other")
        got = admin_api.get(f"/collectors/{collector.pk}")
        body = fresh(got)
        body["collector"]["name"] = "Other"
        response = admin_api.put(f"/collectors/{collector.pk}", body, if_match=got["ETag"])
        legacy_error(response, 400, "DuplicateResourceName")

    def test_if_none_match_answers_304(self, admin_api, collector):
        path = f"/collectors/{collector.pk}"
        etag = admin_api.get(path)["ETag"]
        response = admin_api.get(path, if_none_match=etag)
        assert response.status_code == 304
        assert response["ETag"] == etag
        assert admin_api.get(path, if_none_match='"other"').status_code == 200

    def test_etag_ignores_live_fields(self, admin_api, collector):
        path = f"/collectors/{collector.pk}"
        assert admin_api.get(path)["ETag"] == admin_api.get(path)["ETag"]

    def test_delete_answers_200_empty(self, admin_api, collector):
        response = admin_api.delete(f"/collectors/{collector.pk}")
        assert response.status_code == 200
        assert response.content == b""
        assert not Collector.objects.exists()
        legacy_error(admin_api.delete(f"/collectors/{collector.pk}"), 404, "notfound")

    def test_view_only_key_can_read_but_not_change(self, viewer_api, collector):
        path = f"/collectors/{collector.pk}"
        got = viewer_api.get(path)
        assert got.status_code == 200
        assert viewer_api.get("/collectors").status_code == 200
        message = legacy_error(viewer_api.post("/collectors", self.body), 403, "forbidden")
        assert "collector.add_collector" in message
        legacy_error(viewer_api.put(path, got.json(), if_match=got["ETag"]), 403, "forbidden")
        legacy_error(viewer_api.delete(path), 403, "forbidden")
        assert Collector.objects.count() == 1

    def test_user_without_view_permission_is_403(self, db, client, collector):
        user = User.objects.create_user("nobody", password="x-pass-123456")
        row, key = create_access_key(user=user)
        response = Api(client, basic(row.access_id, key)).get("/collectors")
        legacy_error(response, 403, "forbidden")


# === sources ==================================================================================
class TestSourceCreate:
    def test_the_seed_example_creates_a_pending_source_and_requests_a_run(
        self, admin_api, collector, enqueued, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_api.post(f"/collectors/{collector.pk}/sources", seed_source())
        assert response.status_code == 200, response.content
        stored = Source.objects.get()
        assert response.json() == {
            "source": {
                "id": stored.pk,
                "schemaRef": {"type": "Sophos Central"},
                "state": {"state": "Pending"},
                "sourceType": "Universal",
                "config": {
                    "name": "Sophos",
                    "description": "East field",
                    "category": "eastTeamF",
                    "fields": {"_siemForward": False},
                    "clientId": "client-abc",
                    "clientSecret": MASK,
                    "supported_apis": ["Alerts", "Events"],
                    "pollingInterval": 300,
                },
            }
        }
        # Stored as Pending; the run queued when the insert committed moved it on to Started.
        assert stored.state == SourceState.STARTED
        assert (engine.RUN_SOURCE, stored.pk) in enqueued
        assert stored.get_secret().reveal() == SECRET
        assert SECRET not in response.content.decode()
        assert response["ETag"]

    def test_siem_forward_and_fields_map_to_the_model(self, admin_api, collector):
        body = seed_source(fields={"_siemForward": True, "team": "east"}, pollingInterval=None)
        response = admin_api.post(f"/collectors/{collector.pk}/sources", body)
        assert response.status_code == 200, response.content
        stored = Source.objects.get()
        assert stored.forward_to_siem is True
        assert stored.fields == {"team": "east"}
        assert stored.polling_interval == 300
        assert response.json()["source"]["config"]["fields"] == {
            "team": "east",
            "_siemForward": True,
        }

    @pytest.mark.parametrize(
        ("source", "code", "fragment"),
        [
            ({"sourceType": "Universal", "config": {}}, "EmptySourceType", "schemaRef"),
            ({"schemaRef": {}, "sourceType": "Universal"}, "EmptySourceType", "schemaRef.type"),
            (
                {"schemaRef": {"type": "Okta"}, "sourceType": "Universal"},
                "InvalidSourceType",
                "Okta",
            ),
            ({"schemaRef": {"type": 3}, "sourceType": "Universal"}, "InvalidSourceType", "string"),
            ({"schemaRef": {"type": "Sophos Central"}}, "EmptySourceType", "sourceType"),
            (
                {"schemaRef": {"type": "Sophos Central"}, "sourceType": "HTTP"},
                "InvalidSourceType",
                "sourceType",
            ),
            (
                {"schemaRef": {"type": "Sophos Central", "v": 1}, "sourceType": "Universal"},
                "createValidationError",
                "source.schemaRef.v",
            ),
        ],
    )
    def test_source_types(self, admin_api, collector, source, code, fragment):
        body = {
            "api.version": "v1",
            "source": {"config": seed_source()["source"]["config"], **source},
        }
        response = admin_api.post(f"/collectors/{collector.pk}/sources", body)
        assert fragment in legacy_error(response, 400, code)
        assert not Source.objects.exists()

    @pytest.mark.parametrize(
        ("config", "fragment"),
        [
            ({"name": None}, "source.config.name"),
            ({"name": "  "}, "source.config.name: This field is required"),
            ({"clientId": None}, "source.config.clientId"),
            ({"clientSecret": None}, "source.config.clientSecret: This field is required"),
            ({"clientSecret": MASK}, "put the real secret in before importing"),
            ({"supported_apis": []}, "source.config.supported_apis: Select at least one"),
            ({"supported_apis": ["Logs"]}, "source.config.supported_apis"),
            ({"supported_apis": "Events"}, "must be an array of strings"),
            ({"supported_apis": [1]}, "must be an array of strings"),
            ({"pollingInterval": 10}, "source.config.pollingInterval"),
            ({"pollingInterval": 86401}, "source.config.pollingInterval"),
            ({"pollingInterval": "300"}, "source.config.pollingInterval must be an integer"),
            ({"pollingInterval": 300.5}, "must be an integer"),
            ({"pollingInterval": True}, "must be an integer"),
            ({"clientId": 12}, "source.config.clientId must be a string"),
            ({"fields": {"_siemForward": "maybe"}}, "source.config.fields"),
            ({"fields": {f"f{i}": "v" for i in range(11)}}, "At most 10 fields"),
            ({"fields": "a=b"}, "source.config.fields must be a JSON object"),
            ({"name": "n" * 129}, "source.config.name"),
            ({"region": "eu"}, "Unknown key source.config.region"),
        ],
    )
    def test_invalid_config_is_400_naming_the_field(self, admin_api, collector, config, fragment):
        response = admin_api.post(f"/collectors/{collector.pk}/sources", seed_source(**config))
        assert fragment in legacy_error(response, 400, "createValidationError")
        assert not Source.objects.exists()

    def test_envelope_rules(self, admin_api, collector):
        path = f"/collectors/{collector.pk}/sources"
        one = seed_source()["source"]
        message = legacy_error(
            admin_api.post(path, {"api.version": "v1", "sources": [one]}),
            400,
            "createValidationError",
        )
        assert "One source per request" in message
        legacy_error(
            admin_api.post(path, {"api.version": "v2", "source": one}), 400, "createValidationError"
        )
        message = legacy_error(admin_api.post(path, {"source": "x"}), 400, "createValidationError")
        assert "source must be a JSON object" in message
        message = legacy_error(
            admin_api.post(path, {"source": {**one, "config": []}}), 400, "createValidationError"
        )
        assert "source.config must be a JSON object" in message

    def test_duplicate_name_per_collector(self, admin_api, collector, make_collector):
        path = f"/collectors/{collector.pk}/sources"
        assert admin_api.post(path, seed_source()).status_code == 200
        message = legacy_error(admin_api.post(path, seed_source()), 400, "DuplicateResourceName")
        assert "source.config.name" in message
        other = make_collector("Hosted US")
        assert admin_api.post(f"/collectors/{other.pk}/sources", seed_source()).status_code == 200

    def test_unknown_collector_is_404(self, admin_api, collector):
        response = admin_api.post(f"/collectors/{collector.pk + 1}/sources", seed_source())
        assert "Collector" in legacy_error(response, 404, "notfound")


class TestSourceReadUpdate:
    def test_list_and_get(self, admin_api, source, make_source, make_collector):
        elsewhere = make_source("Elsewhere", collector=make_collector("Other"))
        listed = admin_api.get(f"/collectors/{source.collector_id}/sources").json()
        assert [s["id"] for s in listed["sources"]] == [source.pk]
        got = admin_api.get(source_path(source))
        assert got.json()["source"]["config"]["clientSecret"] == MASK
        assert got.json()["source"]["state"] == {"state": "Pending"}
        assert got["ETag"]
        wrong = f"/collectors/{source.collector_id}/sources/{elsewhere.pk}"
        assert "Source" in legacy_error(admin_api.get(wrong), 404, "notfound")
        legacy_error(
            admin_api.get(f"/collectors/{source.collector_id}/sources/999999"), 404, "notfound"
        )

    def test_put_with_mask_keeps_the_secret(
        self, admin_api, source, enqueued, django_capture_on_commit_callbacks
    ):
        got = admin_api.get(source_path(source))
        body = fresh(got)
        body["source"]["config"]["description"] = "edited"
        body["source"]["config"]["supported_apis"] = ["Alerts"]
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_api.put(source_path(source), body, if_match=got["ETag"])
        assert response.status_code == 200, response.content
        source.refresh_from_db()
        assert source.get_secret().reveal() == SECRET
        assert source.description == "edited"
        assert source.config["supported_apis"] == ["Alerts"]
        assert (engine.RUN_SOURCE, source.pk) in enqueued
        assert response.json()["source"]["config"]["clientSecret"] == MASK
        # Without the key at all the secret is kept too.
        del body["source"]["config"]["clientSecret"]
        again = admin_api.put(source_path(source), body, if_match=response["ETag"])
        assert again.status_code == 200
        source.refresh_from_db()
        assert source.get_secret().reveal() == SECRET

    def test_put_with_a_new_secret_replaces_it_and_changes_the_etag(self, admin_api, source):
        got = admin_api.get(source_path(source))
        body = fresh(got)
        body["source"]["config"]["clientSecret"] = NEW_SECRET
        response = admin_api.put(source_path(source), body, if_match=got["ETag"])
        assert response.status_code == 200
        assert NEW_SECRET not in response.content.decode()
        assert response["ETag"] != got["ETag"]
        source.refresh_from_db()
        assert source.get_secret().reveal() == NEW_SECRET
        legacy_error(
            admin_api.put(source_path(source), body, if_match=got["ETag"]),
            412,
            "precondition.failed",
        )

    def test_put_needs_if_match(self, admin_api, source):
        body = fresh(admin_api.get(source_path(source)))
        legacy_error(admin_api.put(source_path(source), body), 403, "forbidden")
        legacy_error(
            admin_api.put(source_path(source), body, if_match='"x"'), 412, "precondition.failed"
        )

    def test_etag_survives_state_changes_of_the_engine(self, admin_api, source):
        got = admin_api.get(source_path(source))
        engine.transition(source.pk, SourceState.COLLECTING, "collecting")
        later = admin_api.get(source_path(source))
        assert later.json()["source"]["state"] == {"state": "Collecting"}
        assert later["ETag"] == got["ETag"]
        body = fresh(got)
        body["source"]["config"]["category"] = "new/category"
        assert admin_api.put(source_path(source), body, if_match=got["ETag"]).status_code == 200
        assert admin_api.get(source_path(source), if_none_match=later["ETag"]).status_code == 200

    def test_if_none_match_answers_304(self, admin_api, source):
        etag = admin_api.get(source_path(source))["ETag"]
        assert admin_api.get(source_path(source), if_none_match=etag).status_code == 304

    def test_source_type_and_schema_ref_cannot_change(self, admin_api, make_source, collector):
        legacy_kind = make_source("Legacy", collector=collector, kind="Legacy Kind")
        got = admin_api.get(source_path(legacy_kind))
        assert got.json()["source"]["schemaRef"] == {"type": "Legacy Kind"}
        body = seed_source()
        body["source"]["id"] = legacy_kind.pk
        response = admin_api.put(source_path(legacy_kind), body, if_match=got["ETag"])
        assert "cannot change" in legacy_error(response, 400, "updateValidationError")
        sophos = make_source("Sophos", collector=collector)
        got = admin_api.get(source_path(sophos))
        body = fresh(got)
        body["source"]["sourceType"] = "HTTP"
        response = admin_api.put(source_path(sophos), body, if_match=got["ETag"])
        legacy_error(response, 400, "InvalidSourceType")

    def test_put_id_and_validation(self, admin_api, source, make_source):
        make_source("Taken", collector=source.collector)
        got = admin_api.get(source_path(source))
        body = fresh(got)
        body["source"]["id"] = source.pk + 1
        response = admin_api.put(source_path(source), body, if_match=got["ETag"])
        assert "source.id" in legacy_error(response, 400, "updateValidationError")
        body = fresh(got)
        body["source"]["config"]["pollingInterval"] = 5
        response = admin_api.put(source_path(source), body, if_match=got["ETag"])
        assert "pollingInterval" in legacy_error(response, 400, "updateValidationError")
        body["source"]["config"].update(pollingInterval=300, name="Taken")
        response = admin_api.put(source_path(source), body, if_match=got["ETag"])
        legacy_error(response, 400, "DuplicateResourceName")
        source.refresh_from_db()
        assert source.name == "Sophos East"

    def test_view_only_key_cannot_change_sources(self, viewer_api, source):
        got = viewer_api.get(source_path(source))
        assert got.status_code == 200
        path = f"/collectors/{source.collector_id}/sources"
        legacy_error(viewer_api.post(path, seed_source(name="New")), 403, "forbidden")
        legacy_error(
            viewer_api.put(source_path(source), got.json(), if_match=got["ETag"]), 403, "forbidden"
        )
        legacy_error(viewer_api.delete(source_path(source)), 403, "forbidden")
        legacy_error(viewer_api.post(source_path(source) + "/action/restart"), 403, "forbidden")
        source.refresh_from_db()
        assert source.state == SourceState.PENDING
        assert Source.objects.count() == 1


class TestSourceDeleteRestart:
    def test_delete_is_asynchronous_through_stopping(self, admin_api, source, enqueued):
        response = admin_api.delete(source_path(source))
        assert response.status_code == 200
        assert response.content == b""
        assert (engine.FINISH_STOP, source.pk) in enqueued
        got = admin_api.get(source_path(source))
        assert got.json()["source"]["state"] == {"state": "Stopping"}
        got = admin_api.get(source_path(source))
        message = legacy_error(
            admin_api.put(source_path(source), got.json(), if_match=got["ETag"]), 409, "conflict"
        )
        assert "being deleted" in message
        legacy_error(admin_api.post(source_path(source) + "/action/restart"), 409, "conflict")
        assert engine.finish_stop(source.pk)
        legacy_error(admin_api.get(source_path(source)), 404, "notfound")

    def test_restart_clears_a_give_up(
        self, admin_api, source, enqueued, django_capture_on_commit_callbacks
    ):
        Source.objects.filter(pk=source.pk).update(
            state=SourceState.ERROR, halted_at=timezone.now(), failure_count=7, last_error="boom"
        )
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_api.post(source_path(source) + "/action/restart")
        assert response.status_code == 200, response.content
        assert response.json()["source"]["state"]["state"] in ("Pending", "Started")
        assert response["ETag"]
        source.refresh_from_db()
        assert source.halted_at is None and source.failure_count == 0
        assert (engine.RUN_SOURCE, source.pk) in enqueued
        legacy_error(
            admin_api.get(source_path(source) + "/action/restart"), 405, "method.unsupported"
        )


class TestDownload:
    def test_download_then_import_round_trip(self, admin_api, collector, make_collector):
        path = f"/collectors/{collector.pk}/sources"
        first = seed_source(fields={"_siemForward": True, "team": "east"}, pollingInterval=600)
        second = seed_source(name="Alerts only", supported_apis=["Alerts"], description=None)
        for body in (first, second):
            assert admin_api.post(path, body).status_code == 200
        export = admin_api.get(f"{path}?download=true").json()
        assert export["api.version"] == "v1"
        assert all("id" not in s and "state" not in s for s in export["sources"])
        assert SECRET not in json.dumps(export)

        target = make_collector("Restored")
        for exported in export["sources"]:
            exported["config"]["clientSecret"] = SECRET
            body = {"api.version": export["api.version"], "source": exported}
            response = admin_api.post(f"/collectors/{target.pk}/sources", body)
            assert response.status_code == 200, response.content
        again = admin_api.get(f"/collectors/{target.pk}/sources?download=true").json()
        for exported in export["sources"]:
            exported["config"]["clientSecret"] = MASK
        assert again == export
        assert all(s.get_secret().reveal() == SECRET for s in target.sources.all())

    def test_import_of_an_unfilled_download_says_what_to_do(
        self, admin_api, source, make_collector
    ):
        export = admin_api.get(f"/collectors/{source.collector_id}/sources?download=true").json()
        target = make_collector("Restored")
        body = {"api.version": "v1", "source": export["sources"][0]}
        response = admin_api.post(f"/collectors/{target.pk}/sources", body)
        assert "before importing" in legacy_error(response, 400, "createValidationError")

    def test_download_leaves_out_stopping_sources_and_checks_the_flag(self, admin_api, source):
        path = f"/collectors/{source.collector_id}/sources"
        engine.request_stop(source.pk)
        assert admin_api.get(f"{path}?download=true").json()["sources"] == []
        assert len(admin_api.get(path).json()["sources"]) == 1
        legacy_error(admin_api.get(f"{path}?download=yes"), 400, "invalid.request")


class TestSecretNeverLeaves:
    def test_no_read_endpoint_shows_the_secret(self, admin_api, admin_client, source):
        paths = [
            f"/collectors/{source.collector_id}/sources",
            f"/collectors/{source.collector_id}/sources?download=true",
            source_path(source),
            "/status",
            "/collectors",
        ]
        for path in paths:
            for api in (admin_api, Api(admin_client, None)):
                response = api.get(path)
                assert response.status_code == 200, path
                assert SECRET not in response.content.decode(), path

    def test_validation_errors_do_not_echo_the_secret(self, admin_api, collector):
        long_secret = "S" * 300
        response = admin_api.post(
            f"/collectors/{collector.pk}/sources", seed_source(clientSecret=long_secret)
        )
        legacy_error(response, 400, "createValidationError")
        assert long_secret not in response.content.decode()


# === fields ===================================================================================
class TestFields:
    def test_create_list_get(self, admin_api):
        response = admin_api.post("/fields", {"fieldName": "hostIP"})
        assert response.status_code == 200, response.content
        field = Field.objects.get()
        assert response.json() == {
            "fieldName": "hostIP",
            "fieldId": field.field_id,
            "dataType": "String",
            "state": "Enabled",
        }
        assert response["ETag"]
        assert admin_api.get("/fields").json() == {"data": [response.json()]}
        got = admin_api.get(f"/fields/{field.field_id.lower()}")
        assert got.json()["fieldName"] == "hostIP"
        assert (
            admin_api.get(f"/fields/{field.field_id}", if_none_match=got["ETag"]).status_code == 304
        )

    @pytest.mark.parametrize(
        ("body", "code", "fragment"),
        [
            ({"fieldName": "HOSTip"}, "field:already_exists", "already exists"),
            ({"fieldName": "_mine"}, "field:invalid", "reserved"),
            ({"fieldName": "9lives"}, "field:invalid", "must not start with a digit"),
            ({"fieldName": ""}, "field:invalid", "required"),
            ({"fieldName": 3}, "field:invalid", "fieldName"),
            ({"fieldName": "ok", "type": "x"}, "field:invalid", "Unknown key body.type"),
            ({}, "field:invalid", "fieldName"),
        ],
    )
    def test_invalid_names(self, admin_api, body, code, fragment):
        Field.objects.create(name="hostIP")
        assert fragment in errors_error(admin_api.post("/fields", body), 400, code)
        assert Field.objects.count() == 1

    def test_quota(self, admin_api):
        assert admin_api.get("/fields/quota").json() == {
            "quota": MAX_CUSTOM_FIELDS,
            "remaining": MAX_CUSTOM_FIELDS,
        }
        Field.objects.bulk_create(
            Field(name=f"f{i}", field_id=f"{i:016X}") for i in range(MAX_CUSTOM_FIELDS)
        )
        assert admin_api.get("/fields/quota").json()["remaining"] == 0
        errors_error(
            admin_api.post("/fields", {"fieldName": "onemore"}), 400, "field:quota_reached"
        )

    def test_enable_disable_delete(self, admin_api):
        field = Field.objects.create(name="hostIP")
        path = f"/fields/{field.field_id}"
        assert admin_api.delete(f"{path}/disable").status_code == 204
        assert admin_api.get(path).json()["state"] == "Disabled"
        assert admin_api.put(f"{path}/enable").status_code == 204
        assert admin_api.get(path).json()["state"] == "Enabled"
        errors_error(admin_api.put(f"{path}/disable"), 405, "method.unsupported")
        response = admin_api.delete(path)
        assert response.status_code == 204
        assert not Field.objects.exists()
        errors_error(admin_api.delete(path), 404, "field:doesnt_exist")
        errors_error(admin_api.get("/fields/NOT-AN-ID"), 404, "field:doesnt_exist")

    def test_delete_refused_while_used(self, admin_api, make_collector):
        field = Field.objects.create(name="team")
        make_collector("Uses team", fields={"team": "east"})
        message = errors_error(admin_api.delete(f"/fields/{field.field_id}"), 400, "field:in_use")
        assert "Uses team" in message
        assert Field.objects.exists()

    def test_dropped_and_builtin(self, admin_api):
        DroppedField.objects.create(name="stray", count=3)
        assert admin_api.get("/fields/dropped").json() == {"data": [{"fieldName": "stray"}]}
        builtin = admin_api.get("/fields/builtin").json()["data"]
        assert [f["fieldName"] for f in builtin] == list(BUILTIN_FIELDS)
        assert len({f["fieldId"] for f in builtin}) == len(BUILTIN_FIELDS)

    def test_view_only_key_cannot_change_fields(self, viewer_api):
        field = Field.objects.create(name="hostIP")
        assert viewer_api.get("/fields").status_code == 200
        assert viewer_api.get("/fields/dropped").status_code == 200
        errors_error(viewer_api.post("/fields", {"fieldName": "x"}), 403, "forbidden")
        errors_error(viewer_api.delete(f"/fields/{field.field_id}"), 403, "forbidden")
        errors_error(viewer_api.put(f"/fields/{field.field_id}/enable"), 403, "forbidden")
        errors_error(viewer_api.delete(f"/fields/{field.field_id}/disable"), 403, "forbidden")
        assert Field.objects.get().enabled

    def test_bad_json_in_the_newer_shape(self, admin_api):
        errors_error(admin_api.post("/fields", raw="{"), 400, "invalid.request")
        errors_error(
            admin_api.post("/fields", raw="{}", content_type="text/plain"),
            415,
            "contenttype.invalid",
        )


# === health events ============================================================================
def make_event(source, *, name="ThirdPartyConfigError", minutes_ago=0, resolved=False, **kwargs):
    moment = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return HealthEvent.objects.create(
        event_name=name,
        severity=kwargs.pop("severity", "Error"),
        source=source,
        resource_id=str(source.pk),
        resource_name=source.name,
        collector_id=str(source.collector_id),
        collector_name=source.collector.name,
        scope=kwargs.pop("scope", f"s{minutes_ago}"),
        details={"trackerId": "ThirdPartyConfig", "error": "bad secret", "description": "Fix it."},
        first_seen=moment,
        last_seen=moment,
        resolved_at=timezone.now() if resolved else None,
        **kwargs,
    )


class TestHealthEvents:
    def test_open_events_newest_first_in_the_sumo_shape(self, admin_api, source):
        old = make_event(source, minutes_ago=10)
        new = make_event(source, minutes_ago=1, name="ThirdPartyGenericError", severity="Warning")
        make_event(source, minutes_ago=0, resolved=True)
        body = admin_api.get("/healthEvents").json()
        assert [e["eventId"] for e in body["data"]] == [str(new.event_id), str(old.event_id)]
        assert body["next"] is None
        event = body["data"][1]
        assert event == {
            "eventId": str(old.event_id),
            "eventName": "ThirdPartyConfigError",
            "details": {
                "trackerId": "ThirdPartyConfig",
                "error": "bad secret",
                "description": "Fix it.",
            },
            "resourceIdentity": {
                "id": str(source.pk),
                "name": "Sophos East",
                "type": "Source",
                "collectorId": str(source.collector_id),
                "collectorName": "Hosted EU",
            },
            "eventTime": event["eventTime"],
            "subsystem": "Collection",
            "severityLevel": "Error",
        }
        parsed = dt.datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert event["eventTime"][-5] == "." and len(event["eventTime"]) == 24
        assert abs(parsed.replace(tzinfo=dt.UTC) - old.last_seen) < dt.timedelta(milliseconds=1)

    def test_token_paging_visits_every_event_once(self, admin_api, source):
        events = [make_event(source, minutes_ago=i) for i in range(7)]
        # Two events at the same moment must not be lost between pages.
        HealthEvent.objects.filter(pk=events[3].pk).update(last_seen=events[2].last_seen)
        seen, token, pages = [], None, 0
        while True:
            query = "/healthEvents?limit=3" + (f"&token={token}" if token else "")
            body = admin_api.get(query).json()
            seen.extend(e["eventId"] for e in body["data"])
            pages += 1
            token = body["next"]
            if token is None:
                break
        assert pages == 3
        assert sorted(seen) == sorted(str(e.event_id) for e in events)
        assert len(seen) == len(set(seen))

    @pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=ten", "token=forged"])
    def test_bad_parameters_are_400(self, admin_api, source, query):
        response = admin_api.get(f"/healthEvents?{query}")
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] in ("invalid.request", "api:invalid_token")

    def test_events_of_resources(self, admin_api, source, make_source):
        other = make_source("Other", collector=source.collector)
        mine = make_event(source)
        make_event(other)
        body = {"data": [{"id": str(source.pk), "name": "Sophos East", "type": "Source"}]}
        response = admin_api.post("/healthEvents/resources", body)
        assert response.status_code == 200, response.content
        assert [e["eventId"] for e in response.json()["data"]] == [str(mine.event_id)]
        numeric = {"data": [{"id": other.pk, "type": "Source"}]}
        assert len(admin_api.post("/healthEvents/resources", numeric).json()["data"]) == 1
        collector_type = {"data": [{"id": str(source.pk), "type": "Collector"}]}
        assert admin_api.post("/healthEvents/resources", collector_type).json()["data"] == []

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"data": []},
            {"data": "Source"},
            {"data": ["Source"]},
            {"data": [{"id": "1"}]},
            {"data": [{"id": None, "type": "Source"}]},
            {"data": [{"id": "1", "type": "Source", "name": 5}]},
            {"data": [{"id": "1", "type": "Source", "extra": 1}]},
            {"data": [{"id": "1", "type": "Source"}] * 101},
        ],
    )
    def test_bad_resource_bodies_are_400(self, admin_api, body):
        errors_error(admin_api.post("/healthEvents/resources", body), 400, "api:invalid_request")

    def test_view_only_key_reads_events(self, viewer_api, source):
        make_event(source)
        assert len(viewer_api.get("/healthEvents").json()["data"]) == 1
        body = {"data": [{"id": str(source.pk), "type": "Source"}]}
        assert viewer_api.post("/healthEvents/resources", body).status_code == 200
