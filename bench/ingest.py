"""Ingest throughput: one worker, SQLite, the local simulator, pages of 1000 (design section 10).

    .venv/bin/python bench/ingest.py [--events 200000] [--alerts 20000]

Prints items stored per second (with checkpoints and de-duplication), the rate of merely fetching
and parsing the same pages with requests (the ceiling), their ratio, and the worker's peak RSS.
"""

import argparse
import json
import time

from common import SimulatorProcess, drain, fresh_django, make_source, peak_rss_mb, run_phase

TARGET = 30_000


def phase_engine() -> dict:
    fresh_django()
    from collector.models import Message

    source = make_source()
    started = time.perf_counter()
    drain(source.pk)
    seconds = time.perf_counter() - started
    return {
        "items": Message.objects.filter(index="").count(),
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
    parser.add_argument("--phase", choices=["engine", "fetch"])
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.phase == "engine":
        print(json.dumps(phase_engine()))
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
    if engine["items"] != expected:
        raise SystemExit("stored != available: items were lost or duplicated")


if __name__ == "__main__":
    main()
