"""The Collection page with 1,000 collectors and 10,000 sources (design section 10: a fixed number
of SQL queries, under 300 ms server time).

    .venv/bin/python bench/collection_page.py [--collectors 1000] [--sources 10000]

Times the pages in-process through Django's test client (server time only: no network, no
browser), the median of several requests, and counts their SQL queries.
"""

import argparse
import datetime as dt
import random
import statistics
import time

from common import fresh_django

TARGET_MS = 300


def populate(collectors: int, sources: int) -> None:
    from django.utils import timezone

    from collector.choices import Severity, SourceState
    from collector.crypto import encrypt
    from collector.models import Collector, HealthEvent, IngestBucket, Source

    rng = random.Random(1)
    Collector.objects.bulk_create(
        [Collector(name=f"Hosted {i:04d}", category=f"sophos/{i % 7}") for i in range(collectors)]
    )
    ids = list(Collector.objects.values_list("id", flat=True))
    secret = encrypt("bench-secret")
    states = [SourceState.COLLECTING] * 8 + [SourceState.ERROR, SourceState.PAUSED]
    Source.objects.bulk_create(
        [
            Source(
                collector_id=ids[i % len(ids)],
                kind="Sophos Central",
                name=f"Sophos {i:05d}",
                category=f"sophos/s{i % 13}",
                config={"clientId": f"c{i}", "supported_apis": ["Alerts", "Events"]},
                secret_encrypted=secret,
                state=rng.choice(states),
            )  # fmt: skip
            for i in range(sources)
        ],
        batch_size=2000,
    )
    now = timezone.now()
    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    rows = list(Source.objects.values_list("id", "name", "collector_id", "state"))
    IngestBucket.objects.bulk_create(
        [
            IngestBucket(
                source_id=pk,
                stream="Events",
                start=start - dt.timedelta(minutes=5 * k),
                items=rng.randint(0, 500),
            )
            for pk, *_ in rows
            for k in range(12)
        ],
        batch_size=5000,
    )
    HealthEvent.objects.bulk_create(
        [
            HealthEvent(
                event_name="ThirdPartyConfigError",
                severity=Severity.ERROR,
                source_id=pk,
                resource_id=str(pk),
                resource_name=name,
                collector_id=str(cid),
                details={"error": "Sophos Central rejected the client secret."},
            )  # fmt: skip
            for pk, name, cid, state in rows
            if state == SourceState.ERROR
        ],
        batch_size=2000,
    )


def measure(client, url: str, runs: int = 7) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings), len(queries), len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collectors", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=10000)
    args = parser.parse_args()
    fresh_django()
    from django.conf import settings
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)  # the manifest the pages link with
    from django.contrib.auth.models import User
    from django.test import Client

    from collector.models import Source

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    print(f"populating {args.collectors:,} collectors and {args.sources:,} sources ...")
    populate(args.collectors, args.sources)
    client = Client()
    client.force_login(User.objects.create_superuser("bench", password="x" * 12))
    ids = ",".join(str(pk) for pk in Source.objects.values_list("id", flat=True)[:500])
    pages = [
        ("Collection, page 1", "/"),
        ("Collection, page 10", "/?page=10"),
        ("Collection, search 'Sophos 00*'", "/?q=Sophos+00*"),
        ("live status JSON, 500 sources", f"/collection/status.json?ids={ids}"),
        ("Health Events", "/health-events/"),
        ("Health status", "/health/"),
        ("Log Search", "/search/"),
    ]
    print(f"{'page':<36} {'median ms':>10} {'queries':>8} {'KB':>7}")
    for label, url in pages:
        ms, queries, size = measure(client, url)
        flag = "" if ms < TARGET_MS else "  over target"
        print(f"{label:<36} {ms:>10.0f} {queries:>8} {size / 1024:>7.0f}{flag}")


if __name__ == "__main__":
    main()
