"""Template tags for the dashboard: the status icon, inline SVG charts and small formatters.

Every piece of HTML built here goes through ``format_html``/``format_html_join``, so user text
(source names, tooltips, event details) is always escaped, in attributes too.
"""

import datetime as dt
import json
import re

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString

from collector.choices import STATE_LOOK
from collector.status import destination_status_payload, status_payload

register = template.Library()


# --- icons ------------------------------------------------------------------------------------
@register.simple_tag
def icon(name: str, size: int = 16, css: str = "") -> SafeString:
    """An icon from the inline sprite (templates/collector/icons.svg), decorative by default."""
    return format_html(
        '<svg class="icon {}" width="{}" height="{}" aria-hidden="true" focusable="false">'
        '<use href="#icon-{}"></use></svg>',
        css,
        size,
        size,
        name,
    )


def _status_markup(data: dict, *, url: str | None, attr: str, pk, size: int) -> SafeString:
    """The status icon's HTML from a status payload (collector.status): a link to ``url`` or a
    plain span, with the tooltip as ``title`` and ``attr`` (a ``data-`` attribute) naming whose
    status it is, so a script can refresh it in place."""
    svg = format_html(
        '<svg class="icon" width="{}" height="{}" aria-hidden="true" focusable="false">'
        '<use href="#icon-{}"></use></svg>',
        size,
        size,
        data["icon"],
    )
    aria = f"{data['label']}: {data['stateLabel']}"
    if url:
        return format_html(
            '<a class="status-icon text-{}" href="{}" {}="{}" data-health="{}" '
            'data-bs-toggle="tooltip" title="{}" aria-label="{}">{}</a>',
            data["colour"],
            url,
            attr,
            pk,
            data["health"],
            data["tooltip"],
            aria,
            svg,
        )
    return format_html(
        '<span class="status-icon text-{}" {}="{}" data-health="{}" '
        'data-bs-toggle="tooltip" title="{}" role="img" aria-label="{}">{}</span>',
        data["colour"],
        attr,
        pk,
        data["health"],
        data["tooltip"],
        aria,
        svg,
    )


@register.simple_tag
def status_icon(source, events=None, link: bool = True, size: int = 18) -> SafeString:
    """The health icon of a source with its tooltip (state, then one line per open event).

    The shape differs per health (check, hourglass, triangle, octagon, pause), not only the colour.
    The tooltip is a plain ``title`` built on the server, so it works without JavaScript; the
    ``data-status-for`` attribute lets static/collector/status.js refresh it in place. With
    ``link`` the icon opens the source's health events.
    """
    url = None
    if link:
        url = reverse("collector:health_events") + f"?resource_id={source.pk}&status=all"
    return _status_markup(
        status_payload(source, events), url=url, attr="data-status-for", pk=source.pk, size=size
    )


@register.simple_tag
def destination_status_icon(
    destination, events=None, link: bool = True, size: int = 18
) -> SafeString:
    """The health icon of a destination with its tooltip, built like :func:`status_icon` from
    :func:`collector.status.destination_status_payload`. ``data-destination-status-for`` names
    it (``data-status-for`` is the sources' live refresh). With ``link`` the icon opens the
    destination's health events."""
    url = None
    if link:
        url = (
            reverse("collector:health_events")
            + f"?type=Destination&resource_id={destination.pk}&status=all"
        )
    return _status_markup(
        destination_status_payload(destination, events),
        url=url,
        attr="data-destination-status-for",
        pk=destination.pk,
        size=size,
    )


@register.simple_tag
def state_badge(state: str) -> SafeString:
    look = STATE_LOOK.get(state)
    if look is None:
        return format_html('<span class="badge text-bg-light border">{}</span>', state or "-")
    return format_html(
        '<span class="badge rounded-pill text-bg-{}" title="{}">{}</span>',
        look.colour,
        look.description,
        look.label,
    )


@register.simple_tag
def severity_badge(severity: str) -> SafeString:
    if severity == "Error":
        return format_html(
            '<span class="badge text-bg-danger"><svg class="icon" width="12" height="12" '
            'aria-hidden="true"><use href="#icon-x-octagon"></use></svg> {}</span>',
            severity,
        )
    return format_html(
        '<span class="badge text-bg-warning"><svg class="icon" width="12" height="12" '
        'aria-hidden="true"><use href="#icon-exclamation-triangle"></use></svg> {}</span>',
        severity,
    )


# --- navigation -------------------------------------------------------------------------------
@register.simple_tag(takes_context=True)
def nav_item(context, url_name: str, label: str, icon_name: str) -> SafeString:
    """A top-nav link, marked active when the current path is under it."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return ""
    request = context.get("request")
    path = request.path if request is not None else ""
    active = path == url if url == "/" else path.startswith(url)
    if active:
        return format_html(
            '<li class="nav-item"><a class="nav-link active" href="{}" aria-current="page">'
            "{} {}</a></li>",
            url,
            icon(icon_name, 16),
            label,
        )
    return format_html(
        '<li class="nav-item"><a class="nav-link" href="{}">{} {}</a></li>',
        url,
        icon(icon_name, 16),
        label,
    )


# --- charts -----------------------------------------------------------------------------------
@register.simple_tag
def sparkline(values, width: int = 96, height: int = 22) -> SafeString:
    """A tiny line of item counts (oldest first), scaled to its own peak."""
    values = [int(v or 0) for v in (values or [])] or [0]
    peak = max(values) or 1
    step = width / max(len(values) - 1, 1)
    usable = height - 3
    coords = [(i * step, height - 1.5 - (v / peak) * usable) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    area = f"0,{height} {line} {width},{height}"
    total = sum(values)
    return format_html(
        '<svg class="sparkline{}" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{} items in the last hour, in 5-minute steps">'
        "<title>{}</title>"
        '<polygon points="{}" class="sparkline-area"></polygon>'
        '<polyline points="{}" class="sparkline-line"></polyline></svg>',
        "" if total else " sparkline-empty",
        width,
        height,
        width,
        height,
        total,
        " · ".join(str(v) for v in values),
        area,
        line,
    )


OTHER_STREAM_COLOUR = "#868e96"


@register.simple_tag
def stream_legend(streams) -> SafeString:
    """A swatch and the name of each stream (collector.kinds.base.StreamSpec), as the chart
    colours them."""
    return format_html_join(
        " ",
        '<span class="me-2"><svg width="10" height="10" aria-hidden="true"><rect width="10" '
        'height="10" rx="2" fill="{}"></rect></svg> {}</span>',
        ((stream.colour, stream.name) for stream in streams),
    )


@register.simple_tag
def hourly_chart(hours, streams=(), width: int = 720, height: int = 180) -> SafeString:
    """Stacked bars of items per hour and stream, coloured by the kind's ``streams``.

    ``hours`` is a list of ``{"start": datetime, "counts": {stream: n}}``, oldest first.
    """
    colours = {stream.name: stream.colour for stream in streams}
    hours = list(hours or [])
    if not hours:
        return format_html('<p class="text-body-secondary small mb-0">{}</p>', "No data yet.")
    left, bottom, top = 44, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    peak = max((sum(h["counts"].values()) for h in hours), default=0) or 1
    slot = plot_w / len(hours)
    bar_w = max(slot - 3, 1)
    bars = []
    hits = []
    labels = []
    for i, hour in enumerate(hours):
        x = left + i * slot + 1.5
        y = top + plot_h
        tip = [f"{hour['start']:%H:%M} UTC"]
        for stream, count in sorted(hour["counts"].items()):
            tip.append(f"{stream}: {count:,}")
            if not count:
                continue
            h = count / peak * plot_h
            y -= h
            bars.append(
                (colours.get(stream, OTHER_STREAM_COLOUR), f"{x:.1f}", f"{y:.1f}", f"{bar_w:.1f}")
                + (f"{h:.1f}", ", ".join(tip))
            )
        # an invisible full-height target so every hour has a tooltip, even an empty one
        hits.append((f"{x:.1f}", f"{top}", f"{bar_w:.1f}", f"{plot_h}", " · ".join(tip)))
        if i % 6 == 0 or i == len(hours) - 1:
            labels.append((f"{x + bar_w / 2:.1f}", f"{height - 6}", f"{hour['start']:%H:%M}"))
    grid = [
        (f"{left}", f"{top + plot_h * (1 - frac):.1f}", f"{width - 4}", _compact(peak * frac))
        for frac in (0, 0.5, 1)
    ]
    return format_html(
        '<svg class="hourly-chart" viewBox="0 0 {} {}" width="100%" role="img" '
        'aria-label="Items per hour over the last {} hours">{}{}{}</svg>',
        width,
        height,
        len(hours),
        format_html_join(
            "",
            '<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" class="chart-grid"></line>'
            '<text x="{0}" y="{1}" dx="-6" dy="4" text-anchor="end" class="chart-label">{3}</text>',
            grid,
        ),
        format_html_join(
            "",
            '<rect class="bar" fill="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            bars,
        )
        + format_html_join(
            "",
            '<rect class="bar-hit" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            hits,
        ),
        format_html_join(
            "", '<text x="{}" y="{}" text-anchor="middle" class="chart-label">{}</text>', labels
        ),
    )


def _compact(value: float) -> str:
    value = round(value)
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return str(value)


# --- formatting -------------------------------------------------------------------------------
@register.filter
def short_duration(value) -> str:
    """``timedelta`` or seconds as "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    if value is None or value == "":
        return "-"
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def behind(moment) -> str:
    """How long ago ``moment`` was, as a short duration ("-" when unknown)."""
    if not moment:
        return "-"
    return short_duration(timezone.now() - moment)


@register.filter
def pretty_json(value) -> str:
    """Indented JSON of a dict or of a JSON text (text that is not JSON is returned unchanged)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def highlight(text, keywords) -> SafeString:
    """``text`` escaped, with each keyword (case-insensitive) wrapped in ``<mark>``."""
    text = "" if text is None else str(text)
    words = [w for w in (keywords or []) if w]
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    parts = []
    last = 0
    for match in pattern.finditer(text):
        parts.append((text[last : match.start()], match.group(0)))
        last = match.end()
    return format_html(
        "{}{}",
        format_html_join("", "{}<mark>{}</mark>", parts),
        text[last:],
    )


@register.filter
def truncate_end(text, length: int = 300) -> str:
    """``text`` cut to at most ``length`` characters, its end replaced by an ellipsis."""
    text = "" if text is None else str(text)
    return text if len(text) <= length else text[: length - 1] + "…"
