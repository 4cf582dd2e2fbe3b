"""The small shared helpers: ISO times in the Sumo shape."""

import datetime as dt
from zoneinfo import ZoneInfo

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
