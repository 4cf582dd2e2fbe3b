"""The step of IngestBucket rows: the engine writes items into five-minute buckets and the pages
read them back; both floor a time with :func:`bucket_floor`, so they agree on which bucket a
moment belongs to.

No Django imports, so the engine's hot path and the views import it without cycles.
"""

import datetime as dt

BUCKET_MINUTES = 5
BUCKET = dt.timedelta(minutes=BUCKET_MINUTES)


def bucket_floor(moment: dt.datetime) -> dt.datetime:
    """The start of the five-minute bucket holding ``moment`` (same timezone, seconds zeroed).

    Every current UTC offset is a multiple of five minutes, so flooring a local time gives the
    same instant as flooring it in UTC.
    """
    minute = moment.minute - moment.minute % BUCKET_MINUTES
    return moment.replace(minute=minute, second=0, microsecond=0)
