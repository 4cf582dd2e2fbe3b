"""Model and schema rules of design section 7 and the uniqueness constraints."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from collector import services
from collector.forms import CollectorForm, FieldForm
from collector.models import Collector, Field, Source
from collector.validators import MAX_CUSTOM_FIELDS, validate_field_name, validate_fields_map


def test_collector_name_is_unique(make_collector):
    make_collector("Hosted EU")
    with pytest.raises(IntegrityError), transaction.atomic():
        Collector.objects.create(name="Hosted EU")


def test_collector_name_and_description_lengths(db):
    form = CollectorForm(data={"name": "x" * 129, "description": "d" * 1025, "time_zone": "UTC"})
    assert not form.is_valid()
    assert "name" in form.errors and "description" in form.errors


def test_collector_time_zone_must_exist(db):
    form = CollectorForm(data={"name": "ok", "time_zone": "Mars/Olympus"})
    assert not form.is_valid()
    assert "time_zone" in form.errors


def test_source_name_unique_per_collector_only(make_collector, make_source):
    first, second = make_collector("A"), make_collector("B")
    make_source("Sophos", collector=first)
    make_source("Sophos", collector=second)  # same name elsewhere is fine
    with pytest.raises(IntegrityError), transaction.atomic():
        make_source("Sophos", collector=first)


@pytest.mark.parametrize("name", ["hostIP", "a", "_x"[1:], "Tenant_1", "x" * 255])
def test_valid_field_names(name):
    validate_field_name(name)


@pytest.mark.parametrize(
    "name, code",
    [("", "required"), ("1abc", "invalid"), ("has-dash", "invalid"), ("_budget", "reserved"),
     ("white space", "invalid"), ("x" * 256, "max_length"), ("ünïcode", "invalid")],
)  # fmt: skip
def test_invalid_field_names(name, code):
    with pytest.raises(ValidationError) as info:
        validate_field_name(name)
    assert info.value.code == code


def test_field_names_are_unique_without_regard_to_case(db):
    services.create_field(name="hostIP")
    with pytest.raises(services.ServiceError) as info:
        services.create_field(name="HOSTip")
    assert info.value.code == "field:already_exists"
    assert not FieldForm(data={"name": "HostIp"}).is_valid()
    with pytest.raises(IntegrityError), transaction.atomic():
        Field.objects.create(name="HOSTIP")


def test_field_quota(db):
    Field.objects.bulk_create(
        [Field(name=f"f{i}", field_id=f"{i:016X}") for i in range(MAX_CUSTOM_FIELDS)]
    )
    with pytest.raises(services.ServiceError) as info:
        services.create_field(name="one_too_many")
    assert info.value.code == "field:quota_reached"
    assert Field.objects.count() == MAX_CUSTOM_FIELDS


def test_at_most_ten_fields_per_resource_and_short_values():
    validate_fields_map({f"k{i}": "v" for i in range(10)})
    with pytest.raises(ValidationError, match="At most 10"):
        validate_fields_map({f"k{i}": "v" for i in range(11)})
    with pytest.raises(ValidationError, match="200 characters"):
        validate_fields_map({"k": "v" * 201})
    with pytest.raises(ValidationError, match="reserved"):
        validate_fields_map({"_source": "x"})
    validate_fields_map({"_siemForward": True, "_budget": "b"})


def test_model_full_clean_applies_the_fields_rules(make_collector):
    collector = make_collector()
    source = Source(collector=collector, name="s", fields={f"k{i}": "v" for i in range(11)})
    with pytest.raises(ValidationError) as info:
        source.full_clean(exclude=["secret_encrypted"])
    assert "fields" in info.value.message_dict


def test_polling_interval_bounds(make_source):
    source = make_source(polling_interval=10)
    with pytest.raises(ValidationError) as info:
        source.full_clean()
    assert "polling_interval" in info.value.message_dict


def test_delete_field_in_use_is_refused_naming_the_users(make_collector, make_source):
    field = services.create_field(name="team")
    collector = make_collector("Ops", fields={"team": "blue"})
    make_source("East", collector=collector, fields={"TEAM": "red"})
    with pytest.raises(services.ServiceError) as info:
        services.delete_field(field=field)
    assert "collector 'Ops'" in info.value.message and "source 'East'" in info.value.message
    assert Field.objects.filter(pk=field.pk).exists()


def test_every_model_has_str_and_docstring():
    from django.apps import apps

    for model in apps.get_app_config("collector").get_models():
        assert model.__doc__ and not model.__doc__.startswith(model.__name__ + "("), model
        assert "__str__" in model.__dict__, model
