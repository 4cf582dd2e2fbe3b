"""The HTTP destination kinds' forms: field-level validation, what they store, which secret."""

from __future__ import annotations

import pytest

from collector.crypto import MASK
from collector.destinations.http_forms import (
    ElasticBulkForm,
    SentinelForm,
    SplunkHECForm,
    SumoHTTPForm,
    WebhookForm,
)
from collector.models import Destination
from tests.destinations import http_helpers
from tests.destinations.http_helpers import KINDS

# Fixtures shared by the HTTP kinds' tests (a conftest here would be shared with others).
tls_pem = http_helpers.tls_pem

pytestmark = pytest.mark.django_db

SUMO_URL = "https://endpoint4.collection.sumologic.com/receiver/v1/http/ZaVnC4dhaV3xaY2Zhc=="
VALID = {
    SplunkHECForm: {"url": "https://splunk.example:8088", "token": "0f1e2d3c-hec", "index": "main"},
    ElasticBulkForm: {"url": "https://es.example:9200", "index": "logs-sumo", "api_key": "a2V5"},
    SumoHTTPForm: {"url": SUMO_URL},
    SentinelForm: {
        "url": "https://dce-a1b2.westeurope-1.ingest.monitor.azure.com",
        "dcr_immutable_id": "dcr-0123456789abcdef0123456789abcdef",
        "stream_name": "Custom-SumoSources",
        "token_url": "https://login.microsoftonline.com/72f988bf-0000/oauth2/v2.0/token",
        "client_id": "00000000-0000-4000-8000-00000000C11E",
        "client_secret": "s3cret~value",
    },
    WebhookForm: {
        "url": "https://hooks.example/ingest?source=sumo",
        "payload": "ndjson",
        "auth": "bearer",
        "token": "hook-token",
    },
}


def make(form_class, instance=None, **data):
    fields = {"name": "Dest", "description": "", "route": "", "siem": False}
    fields.update(VALID[form_class])
    fields.update(data)
    fields = {k: v for k, v in fields.items() if v is not None}
    return form_class(data=fields, instance=instance)


def stored(kind: str, config: dict, secret: bool = True) -> Destination:
    """An existing destination as an edit form sees it (not saved: no row is needed)."""
    return Destination(pk=41, name="Old", kind=kind, config=config,
                       secret_encrypted="x" if secret else "")  # fmt: skip


def errors(form) -> dict:
    assert not form.is_valid()
    return {name: " ".join(messages) for name, messages in form.errors.items()}


@pytest.mark.parametrize("form_class", list(VALID))
def test_the_valid_example_of_each_kind_validates(form_class):
    form = make(form_class)
    assert form.is_valid(), form.errors
    kind = KINDS[form_class.kind_name]
    assert kind.form_class is form_class
    assert form.new_secret()
    config = form.kind_config()
    # What is stored is what the kind shows in the API, secrets apart.
    shown = kind.api_config(stored(form_class.kind_name, config))
    assert set(shown) == set(kind.config_keys)
    assert MASK in shown.values()


@pytest.mark.parametrize("form_class", list(VALID))
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://splunk.example:8088/receiver/v1/http/x", "Use https://"),
        ("ftp://files.example/receiver/v1/http/x", "starts with https://"),
        ("https://user:pw@host.example/receiver/v1/http/x", "Do not put credentials in the URL"),
        ("https://host example/receiver/v1/http/x", "spaces or control characters"),
        ("https://host.example:99999/receiver/v1/http/x", "valid http(s) URL"),
    ],
)
def test_urls_must_be_https_with_a_host_and_no_credentials(form_class, url, words):
    assert words in errors(make(form_class, url=url))["url"]


@pytest.mark.parametrize("form_class", [SplunkHECForm, ElasticBulkForm, WebhookForm])
@pytest.mark.parametrize("host", ["127.0.0.1:8088", "localhost:9200", "[::1]:8080"])
def test_plain_http_is_allowed_to_this_machine_only(form_class, host):
    form = make(form_class, url=f"http://{host}")
    assert form.is_valid(), form.errors


@pytest.mark.parametrize("form_class", list(VALID))
def test_a_ca_bundle_must_be_pem_certificates(form_class, tls_pem):
    _cert, _key, pem = tls_pem
    good = make(form_class, ca_bundle=pem)
    assert good.is_valid(), good.errors
    assert good.kind_config()["caBundle"] == pem.strip() + "\n"
    assert (
        "PEM certificates" in errors(make(form_class, ca_bundle="not a certificate"))["ca_bundle"]
    )
    with_key = pem + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert "private key" in errors(make(form_class, ca_bundle=with_key))["ca_bundle"]


def test_a_ca_bundle_needs_an_https_url(tls_pem):
    form = make(WebhookForm, url="http://127.0.0.1:9000/hook", ca_bundle=tls_pem[2])
    assert "only applies to an https" in errors(form)["ca_bundle"]


@pytest.mark.parametrize("form_class", list(VALID))
def test_a_new_destination_needs_its_secret(form_class):
    secret = {
        SplunkHECForm: "token",
        ElasticBulkForm: "api_key",
        SumoHTTPForm: "url",
        SentinelForm: "client_secret",
    }.get(form_class)
    if secret is None:  # a webhook needs one for bearer and basic, none without authentication
        assert "token is required" in errors(make(form_class, token=""))["token"]
        assert make(form_class, token="", auth="none").is_valid()
        assert make(form_class, token="", auth=None).is_valid()  # omitted: none
        return
    assert secret in errors(make(form_class, **{secret: ""}))


# --- Splunk HEC -------------------------------------------------------------------------------
def test_hec_url_endpoint_suffix_is_cut_to_the_base():
    form = make(SplunkHECForm, url="https://splunk.example:8088/services/collector/event/")
    assert form.is_valid(), form.errors
    assert form.kind_config()["url"] == "https://splunk.example:8088"


def test_hec_index_and_channel_are_checked():
    assert "lower-case" in errors(make(SplunkHECForm, index="Main Index"))["index"]
    assert "GUID" in errors(make(SplunkHECForm, channel="not-a-guid"))["channel"]


def test_hec_ack_without_a_channel_gets_one_and_keeps_it_on_edit():
    form = make(SplunkHECForm, ack=True)
    assert form.is_valid(), form.errors
    config = form.kind_config()
    assert config["ack"] is True and len(config["channel"]) == 36
    edit = make(SplunkHECForm, instance=stored("SplunkHEC", config), ack=True, token=MASK)
    assert edit.is_valid(), edit.errors
    assert edit.kind_config()["channel"] == config["channel"]
    assert edit.new_secret() == ""  # ******** keeps the stored token


@pytest.mark.parametrize(
    ("form_class", "field", "value"),
    [
        (SplunkHECForm, "token", "tok en"),
        (SplunkHECForm, "token", "tökén"),
        (ElasticBulkForm, "api_key", "key\twith tab"),
        (WebhookForm, "token", "bearer\r\nX-Evil: 1"),
    ],
)
def test_tokens_sent_in_headers_are_visible_ascii(form_class, field, value):
    assert "visible ASCII" in errors(make(form_class, **{field: value}))[field]


def test_hec_sourcetype_defaults_to_json():
    form = make(SplunkHECForm)
    assert form.is_valid()
    assert form.kind_config()["sourcetype"] == "_json"


# --- Elasticsearch ----------------------------------------------------------------------------
def test_elastic_api_key_or_user_and_password():
    key = make(ElasticBulkForm)
    assert key.is_valid() and key.kind_config()["auth"] == "apikey" and key.new_secret() == "a2V5"
    basic = make(ElasticBulkForm, api_key="", username="elastic", password="pw 1")
    assert basic.is_valid(), basic.errors
    assert basic.kind_config()["auth"] == "basic" and basic.new_secret() == "pw 1"
    both = make(ElasticBulkForm, username="elastic", password="pw")
    assert "not both" in errors(both)["api_key"]
    assert (
        "password is required"
        in errors(make(ElasticBulkForm, api_key="", username="u"))["password"]
    )
    assert (
        "user name is required"
        in errors(make(ElasticBulkForm, api_key="", password="pw"))["username"]
    )
    assert "An API key, or a user name" in errors(make(ElasticBulkForm, api_key=""))["api_key"]


def test_elastic_a_stored_secret_is_kept_only_by_the_mode_that_stored_it():
    as_key = stored("ElasticBulk", {"url": "https://es.example:9200", "auth": "apikey"})
    keep = make(ElasticBulkForm, instance=as_key, api_key=MASK)
    assert keep.is_valid(), keep.errors
    assert keep.new_secret() == ""
    switch = make(ElasticBulkForm, instance=as_key, api_key="", username="elastic", password=MASK)
    assert "password is required" in errors(switch)["password"]


@pytest.mark.parametrize("index", ["Logs", "-logs", "_logs", "lo gs", "logs,other", "a/b", ".."])
def test_elastic_index_names_follow_elasticsearch_rules(index):
    assert "index name" in errors(make(ElasticBulkForm, index=index))["index"]


def test_elastic_url_keeps_a_path_prefix_and_drops_bulk():
    form = make(ElasticBulkForm, url="https://proxy.example/es/_bulk")
    assert form.is_valid(), form.errors
    assert form.kind_config()["url"] == "https://proxy.example/es"


# --- Sumo Logic -------------------------------------------------------------------------------
def test_sumo_url_must_be_an_http_source_url_and_only_its_host_is_stored():
    form = make(SumoHTTPForm)
    assert form.is_valid(), form.errors
    assert form.kind_config() == {
        "caBundle": "",
        "endpoint": "https://endpoint4.collection.sumologic.com",
    }
    assert form.new_secret() == SUMO_URL
    assert "/receiver/v1/http/" in errors(make(SumoHTTPForm, url="https://x.example/hook"))["url"]


def test_sumo_masked_url_keeps_the_stored_one_and_its_endpoint():
    old = stored("SumoHTTP", {"endpoint": "https://endpoint9.collection.sumologic.com"})
    form = make(SumoHTTPForm, instance=old, url=MASK)
    assert form.is_valid(), form.errors
    assert form.new_secret() == ""
    assert form.kind_config()["endpoint"] == "https://endpoint9.collection.sumologic.com"


# --- Sentinel ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("dcr_immutable_id", "dcr-XYZ", "32 lower-case hex"),
        ("stream_name", "SumoSources", "Custom- or Microsoft-"),
        ("client_id", "my-app", "is a GUID"),
        ("url", "https://dce.example/some/path", "without a path"),
    ],
)
def test_sentinel_fields_are_checked(field, value, words):
    assert words in errors(make(SentinelForm, **{field: value}))[field]


def test_sentinel_stores_the_api_keys():
    form = make(SentinelForm)
    assert form.is_valid(), form.errors
    config = form.kind_config()
    assert config["clientId"] == "00000000-0000-4000-8000-00000000c11e"
    assert config["dcrImmutableId"] == "dcr-0123456789abcdef0123456789abcdef"
    assert "client_secret" not in config and "clientSecret" not in config


# --- Webhook ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Authorization": "Bearer x"}, "set by the destination itself"),
        ({"content-type": "text/plain"}, "set by the destination itself"),
        ({"Host": "other"}, "set by the destination itself"),
        ({"Connection": "close"}, "hop-by-hop"),
        ({"Transfer-Encoding": "chunked"}, "hop-by-hop"),
        ({"X-Env": "a\r\nX-Evil: 1"}, "visible ASCII"),
        ({"X-Env": 5}, "visible ASCII"),
        ({"Bad Name": "v"}, "not a valid header name"),
        (["X-Env"], "JSON object"),
        ("{not json", "valid JSON"),
    ],
)
def test_webhook_headers_refuse_what_the_kind_owns_and_injection(headers, words):
    assert words in errors(make(WebhookForm, headers=headers))["headers"]


def test_webhook_headers_from_the_api_and_from_the_page():
    api = make(WebhookForm, headers={"X-Env": "prod"})
    page = make(WebhookForm, headers='{"X-Env": "prod"}')
    for form in (api, page):
        assert form.is_valid(), form.errors
        assert form.kind_config()["headers"] == {"X-Env": "prod"}


def test_webhook_authentication_needs_what_it_uses():
    assert (
        "user name is required" in errors(make(WebhookForm, auth="basic", token="pw"))["username"]
    )
    basic = make(WebhookForm, auth="basic", username="hook", token="pw")
    assert basic.is_valid(), basic.errors
    assert basic.new_secret() == "pw"
    none = make(WebhookForm, auth="none", username="ignored")
    assert none.is_valid() and none.kind_config()["username"] == ""


@pytest.mark.parametrize(("given", "stored_value"), [(None, True), (False, False), (True, True)])
def test_webhook_gzip_defaults_to_on_when_the_api_omits_it(given, stored_value):
    form = make(WebhookForm)
    data = dict(form.data, gzip=given)  # the API passes None for an omitted key
    form = WebhookForm(data=data)
    assert form.is_valid(), form.errors
    assert form.kind_config()["gzip"] is stored_value


def test_webhook_gzip_unticked_on_the_page_is_off():
    form = make(WebhookForm)  # no gzip key at all: an unticked checkbox
    assert form.is_valid()
    assert form.kind_config()["gzip"] is False
