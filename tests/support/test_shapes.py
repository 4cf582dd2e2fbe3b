"""The small shared helpers: ISO times in the Sumo shape and the IngestBucket step."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from collector.buckets import BUCKET, bucket_floor
from collector.shapes import iso

UTC = dt.UTC


# --- iso --------------------------------------------------------------------------------------
def test_iso_is_utc_with_milliseconds_and_z():
    moment = dt.datetime(2026, 1, 20, 16, 10, 27, 85000, tzinfo=UTC)
    assert iso(moment) == "2026-01-20T16:10:27.085Z"


def test_iso_converts_other_zones_to_utc():
    berlin = dt.datetime(2026, 1, 20, 17, 10, 27, tzinfo=ZoneInfo("Europe/Berlin"))
    assert iso(berlin) == "2026-01-20T16:10:27.000Z"


def test_iso_cuts_microseconds_instead_of_rounding():
    # Rounding could move a time into the next second (or day) and past the data it names.
    moment = dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert iso(moment) == "2026-12-31T23:59:59.999Z"


def test_iso_of_none_is_none():
    assert iso(None) is None


# --- bucket_floor -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("moment", "start"),
    [
        ((16, 7, 59, 999999), (16, 5)),
        ((16, 5, 0, 0), (16, 5)),
        ((16, 4, 59, 999999), (16, 0)),
        ((16, 59, 59, 0), (16, 55)),
        ((0, 0, 0, 1), (0, 0)),
    ],
)
def test_bucket_floor_gives_the_start_of_the_five_minute_bucket(moment, start):
    hour, minute, second, micro = moment
    floored = bucket_floor(dt.datetime(2026, 1, 20, hour, minute, second, micro, tzinfo=UTC))
    assert floored == dt.datetime(2026, 1, 20, *start, tzinfo=UTC)


def test_bucket_floor_keeps_the_zone_and_agrees_with_utc():
    kathmandu = ZoneInfo("Asia/Kathmandu")  # UTC+05:45, the oddest offset in use
    local = dt.datetime(2026, 1, 20, 22, 3, 10, tzinfo=kathmandu)
    floored = bucket_floor(local)
    assert floored.tzinfo is kathmandu
    assert floored == bucket_floor(local.astimezone(UTC))


def test_consecutive_buckets_are_one_step_apart():
    moment = dt.datetime(2026, 1, 20, 16, 9, 30, tzinfo=UTC)
    assert bucket_floor(moment + BUCKET) - bucket_floor(moment) == dt.timedelta(minutes=5)
