"""Ingest throughput: one worker, SQLite, the local simulator, pages of 1000 (design section 10).

    .venv/bin/python bench/ingest.py [--events 200000] [--alerts 20000]
                                     [--endpoint-alerts 50000] [--endpoints 2000]

Prints items stored per second (with checkpoints and de-duplication), the rate of merely fetching
and parsing the same pages with requests (the ceiling), their ratio, and the worker's peak RSS.

Then the cost of endpoint details: an alerts-only source over ``--endpoint-alerts`` alerts naming
``--endpoints`` endpoints, drained once as the product does it (Alerts, then the Endpoints stream
looking up every endpoint its endpoint alerts name, 100 ids a request) and once without the
Endpoints stream (as before it existed); alerts per second of each and their ratio.
"""

import argparse
import json
import time

from common import SimulatorProcess, drain, fresh_django, make_source, peak_rss_mb, run_phase

TARGET = 30_000


def without_endpoint_details() -> None:
    """Collect as before the Endpoints stream existed. The product has no switch for it (like
    the Sumo source, endpoint details always come with alerts), so the baseline drops the stream
    from what the kind collects; the session then does not track endpoint alerts either."""
    from collector.kinds.sophos_central.kind import SophosCentralKind

    with_endpoints = SophosCentralKind.source_streams
    SophosCentralKind.source_streams = lambda self, config: tuple(
        s for s in with_endpoints(self, config) if s != "Endpoints"
    )


def phase_engine(apis: tuple[str, ...], endpoint_details: bool) -> dict:
    fresh_django()
    from collector.models import CollectionRun, Message

    if not endpoint_details:
        without_endpoint_details()
    source = make_source(apis=apis)
    started = time.perf_counter()
    drain(source.pk)
    seconds = time.perf_counter() - started
    stored = Message.objects.filter(index="")
    runs = CollectionRun.objects.filter(source=source)
    seconds_of = {}
    for run in runs:
        spent = (run.ended_at - run.started_at).total_seconds()
        seconds_of[run.stream] = seconds_of.get(run.stream, 0.0) + spent
    return {
        "stream_seconds": seconds_of,
        "items": stored.exclude(stream="Endpoints").count(),
        "alerts": stored.filter(stream="Alerts").count(),
        "endpoints": stored.filter(stream="Endpoints").count(),
        "seconds": seconds,
        "rss_mb": peak_rss_mb(),
    }


def phase_fetch(url: str) -> dict:
    """The ceiling: the same pages fetched and parsed with requests, nothing stored."""
    import requests

    session = requests.Session()
    token = session.post(f"{url}/api/v2/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "simulator-client",
        "client_secret": "simulator-secret", "scope": "token"}).json()["access_token"]  # fmt: skip
    session.headers["Authorization"] = f"Bearer {token}"
    who = session.get(f"{url}/whoami/v1").json()
    host = who["apiHosts"]["dataRegion"].rstrip("/")
    session.headers["X-Tenant-ID"] = who["id"]
    started = time.perf_counter()
    items = 0
    params = {"limit": 1000, "from_date": int(time.time()) - 23 * 3600}
    while True:
        page = session.get(f"{host}/siem/v1/events", params=params).json()
        items += len(page["items"])
        if not page["has_more"]:
            break
        params = {"limit": 1000, "cursor": page["next_cursor"]}
    since = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 23 * 3600))
    params = {"from": since, "sort": "raisedAt:asc", "pageSize": 1000}
    while True:
        page = session.get(f"{host}/common/v1/alerts", params=params).json()
        items += len(page["items"])
        key = page.get("pages", {}).get("nextKey")
        if not key:
            break
        params = {"from": since, "sort": "raisedAt:asc", "pageSize": 1000, "pageFromKey": key}
    return {"items": items, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--endpoint-alerts", type=int, default=50_000)
    parser.add_argument("--endpoints", type=int, default=2_000)
    parser.add_argument("--phase", choices=["engine", "fetch"])
    parser.add_argument("--apis", default="Alerts,Events")
    parser.add_argument("--no-endpoint-details", action="store_true")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.phase == "engine":
        apis = tuple(args.apis.split(","))
        print(json.dumps(phase_engine(apis, not args.no_endpoint_details)))
        return
    if args.phase == "fetch":
        print(json.dumps(phase_fetch(args.url)))
        return

    print(f"simulator: {args.events:,} events + {args.alerts:,} alerts backlog, one tenant ...")
    with SimulatorProcess(events=args.events, alerts=args.alerts, late_fraction=0, seed=7) as sim:
        engine = run_phase(__file__, "engine", sim.env())
        ceiling = run_phase(__file__, "fetch", {}, "--url", sim.url)
        available = sim.stats()["totals"]
    expected = available["Events"]["available"] + available["Alerts"]["available"]
    rate = engine["items"] / engine["seconds"]
    ceiling_rate = ceiling["items"] / ceiling["seconds"]
    print(
        f"stored        {engine['items']:>10,} items in {engine['seconds']:.2f} s   (simulator had {expected:,})"
    )
    print(
        f"ingest rate   {rate:>10,.0f} items/s   (target {TARGET:,}: {'met' if rate >= TARGET else 'MISSED'})"
    )
    print(f"fetch+parse   {ceiling_rate:>10,.0f} items/s   (the ceiling: requests, nothing stored)")
    print(f"ratio         {rate / ceiling_rate:>10.2f}")
    print(f"worker RSS    {engine['rss_mb']:>10.0f} MB peak")
    print(f"              {engine['endpoints']:>10,} endpoint records besides")
    if engine["items"] != expected:
        raise SystemExit("stored != available: items were lost or duplicated")
    endpoint_details(args.endpoint_alerts, args.endpoints)


def endpoint_details(alerts: int, endpoints: int) -> None:
    """Alerts per second of an alerts-only source with and without the Endpoints stream."""
    print(
        f"\nsimulator: {alerts:,} alerts naming {endpoints:,} endpoints, one tenant, "
        "alerts only ..."
    )
    with SimulatorProcess(
        events=0, alerts=alerts, endpoints=endpoints, late_fraction=0, seed=7
    ) as sim:
        without = run_phase(__file__, "engine", sim.env(), "--apis", "Alerts",
                            "--no-endpoint-details")  # fmt: skip
        looked_up = sim.stats()["endpoint_lookups"]
        with_details = run_phase(__file__, "engine", sim.env(), "--apis", "Alerts")
        lookups = sim.stats()["endpoint_lookups"]
    if without["alerts"] != alerts or with_details["alerts"] != alerts:
        raise SystemExit("stored != available: alerts were lost or duplicated")
    if looked_up["requests"]:
        raise SystemExit("the baseline looked endpoints up")
    rate_without = alerts / without["seconds"]
    rate_with = alerts / with_details["seconds"]
    print(f"without       {rate_without:>10,.0f} alerts/s   ({without['seconds']:.2f} s)")
    print(
        f"with lookups  {rate_with:>10,.0f} alerts/s   ({with_details['seconds']:.2f} s, "
        f"{with_details['endpoints']:,} endpoint records from {lookups['requests']} lookups "
        f"of {lookups['ids']:,} ids)"
    )
    print(f"ratio         {rate_with / rate_without:>10.2f}")
    spent = with_details["stream_seconds"]
    print(
        f"              Alerts stream {spent.get('Alerts', 0):.2f} s (without: "
        f"{without['stream_seconds'].get('Alerts', 0):.2f} s), Endpoints stream "
        f"{spent.get('Endpoints', 0):.2f} s"
    )


if __name__ == "__main__":
    main()
