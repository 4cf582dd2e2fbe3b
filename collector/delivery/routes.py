"""Which stored messages a destination receives: its route, in the Log Search language.

A route is metadata terms and keywords as Log Search reads them (``_sourceCategory=prod/*
_collector=EU``), so one language describes both. A SIEM destination also receives every
message of a source with Forward to SIEM on. An empty route selects all collected data (not the
health-event records, which a route names with ``_index=sumologic_system_events``), unless the
destination is a SIEM destination: then only the forwarded sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from collector.search import ParsedQuery, matches, parse_query, query_q


def forwarded_q() -> Q:
    """Collected messages of sources with Forward to SIEM on: only those carry a _siemEventID."""
    return Q(index="") & ~Q(siem_event_id="")


@dataclass(frozen=True)
class Route:
    parsed: ParsedQuery | None  # None: the route text is empty
    siem: bool

    @classmethod
    def of(cls, destination) -> Route:
        text = (destination.route or "").strip()
        return cls(parse_query(text) if text else None, bool(destination.siem))

    def selects(self, row) -> bool:
        """Whether one message (a Message or a mapping of its columns) is routed here."""
        if self.siem and _get(row, "index") == "" and _get(row, "siem_event_id") != "":
            return True
        if self.parsed is None:
            return not self.siem and _get(row, "index") == ""
        return matches(self.parsed, row)

    def selects_row(self, index: str, siem_event_id: str, view) -> bool:
        """:meth:`selects` for a plain row: the common routes (everything, Forward to SIEM)
        decide on its ``index`` and ``siem_event_id`` alone; ``view()`` makes the mapping of
        its columns for the rest."""
        if self.siem and index == "" and siem_event_id != "":
            return True
        if self.parsed is None:
            return not self.siem and index == ""
        return matches(self.parsed, view())

    def q(self) -> Q:
        """The same decision as SQL, for counting a backlog or what a purge would lose."""
        if self.parsed is None:
            return forwarded_q() if self.siem else Q(index="")
        condition = query_q(self.parsed)
        return condition | forwarded_q() if self.siem else condition


def _get(row, column: str) -> str:
    value = row.get(column) if isinstance(row, dict) else getattr(row, column, "")
    return "" if value is None else str(value)
