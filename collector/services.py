"""Services for what users do: plain functions with keyword arguments that own their transactions.

Views and the API call these after validating with collector.forms; nothing here parses requests.
"""

import datetime as dt
import json
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from collector import engine
from collector.choices import DestinationState, SourceState
from collector.crypto import DecryptionError
from collector.delivery.clock import hold_clock
from collector.delivery.runs import kick_delivery
from collector.kinds import get_kind
from collector.kinds.base import ConnectionReport, ItemLine
from collector.models import Checkpoint, Collector, Destination, Field, Message, Source
from collector.search import name_search_q
from collector.validators import (
    FIELD_NAME_RE,
    MAX_CUSTOM_FIELDS,
    SETTABLE_BUILTIN_FIELDS,
    validate_field_name,
)


class ServiceError(Exception):
    """A request that is valid in form but refused by a rule; ``code`` names the rule."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


# --- collectors -------------------------------------------------------------------------------
def create_collector(*, cleaned: dict, user=None) -> Collector:
    try:
        with transaction.atomic():
            return Collector.objects.create(
                name=cleaned["name"],
                description=cleaned.get("description", ""),
                category=cleaned.get("category", ""),
                fields=cleaned.get("fields") or {},
                time_zone=cleaned.get("time_zone") or "UTC",
                created_by=user if user and user.is_authenticated else None,
            )
    except IntegrityError:
        raise ServiceError(
            f"A collector named {cleaned['name']!r} already exists.", code="duplicate", field="name"
        )


def update_collector(*, collector: Collector, cleaned: dict) -> Collector:
    for attr in ("name", "description", "category", "fields", "time_zone"):
        if attr in cleaned:
            setattr(collector, attr, cleaned[attr] if cleaned[attr] is not None else "")
    try:
        with transaction.atomic():
            collector.save()
    except IntegrityError:
        raise ServiceError(
            f"A collector named {collector.name!r} already exists.", code="duplicate", field="name"
        )
    return collector


def delete_collector(*, collector: Collector) -> None:
    """Delete a collector and its sources. Collected messages stay (their metadata keeps names);
    the open health events of the collector and its sources resolve, saying why."""
    with transaction.atomic():
        engine.resolve_deleted(
            source_ids=list(collector.sources.values_list("pk", flat=True)),
            collector_id=collector.pk,
            reason="The collector was deleted.",
        )
        collector.delete()


# --- sources ----------------------------------------------------------------------------------
def _apply_source_form(source: Source, form) -> None:
    cleaned = form.cleaned_data
    source.name = cleaned["name"]
    source.description = cleaned.get("description", "")
    source.category = cleaned.get("category", "")
    source.fields = cleaned.get("fields") or {}
    source.forward_to_siem = bool(cleaned.get("forward_to_siem"))
    source.config = form.kind_config()
    source.polling_interval = cleaned["polling_interval"]  # the base SourceForm's field
    secret = form.new_secret()
    if secret:
        source.set_secret(secret)


def create_source(*, collector: Collector, form, user=None) -> Source:
    """Store a validated source as Pending and queue its first run at once."""
    source = Source(collector=collector, kind=form.kind_name)
    if user is not None and user.is_authenticated:
        source.created_by = user
    _apply_source_form(source, form)
    now = timezone.now()
    source.state = SourceState.PENDING
    source.state_changed_at = now
    source.next_poll_at = now
    try:
        with transaction.atomic():
            source.save()
            engine.record_transition(
                source, "", SourceState.PENDING, "Source submitted and validated."
            )
            if form.cleaned_data.get("auto_add_fields"):
                ensure_fields(names=source.fields.keys())
            engine.kick_on_commit(source.pk)
    except IntegrityError:
        raise ServiceError(
            f"A source named {source.name!r} already exists on this collector.",
            code="duplicate",
            field="name",
        )
    return source


def update_source(*, source: Source, form) -> Source:
    """Store an edit: back to Pending, retry streak cleared, a new run queued at once."""
    _apply_source_form(source, form)
    try:
        with transaction.atomic():
            source.save()
            if form.cleaned_data.get("auto_add_fields"):
                ensure_fields(names=source.fields.keys())
            engine.reset_to_pending(source.pk, reason="Source configuration was edited.")
    except IntegrityError:
        raise ServiceError(
            f"A source named {source.name!r} already exists on this collector.",
            code="duplicate",
            field="name",
        )
    source.refresh_from_db()
    return source


def restart_source(*, source: Source) -> Source:
    """Clear an error or a give-up and run again at once (keeps checkpoints)."""
    engine.reset_to_pending(source.pk, reason="Restarted by a user.")
    source.refresh_from_db()
    return source


def reset_checkpoint(
    *, source: Source, stream: str | None, resume_from: dt.datetime, user=None
) -> Source:
    """Make ``stream`` (None: every stream of the source) of every tenant resume at
    ``resume_from``, then restart the source like an edit does.

    Each checkpoint gets the kind's position for that moment (``SourceKind.checkpoint_from``)
    and ``data_until = resume_from``; a tenant without a checkpoint for the stream gets one.
    Items read again are stored once (the store's unique key). Refused with a ServiceError
    (``field`` names the form field) for a source being deleted, a stream the source does not
    collect, a moment in the future or older than the kind serves, a kind that cannot reset, or
    a source that has not found its tenants yet.
    """
    if source.state == SourceState.STOPPING:
        raise ServiceError(f"Source {source.name} is being deleted.", code="stopping")
    streams = source.streams
    if stream is not None and stream not in streams:
        raise ServiceError(
            f"Source {source.name} does not collect {stream!r}; it collects "
            f"{', '.join(streams) or 'nothing'}.",
            code="unknown_stream",
            field="stream",
        )
    if timezone.is_naive(resume_from):
        resume_from = resume_from.replace(tzinfo=dt.UTC)
    resume_from = resume_from.astimezone(dt.UTC)
    now = timezone.now()
    if resume_from > now:
        raise ServiceError(
            f"{resume_from:%Y-%m-%d %H:%M} UTC is in the future: choose a time before "
            f"{now:%Y-%m-%d %H:%M} UTC.",
            code="future",
            field="resume_from",
        )
    chosen = [stream] if stream is not None else list(streams)
    kind = get_kind(source.kind)
    try:
        positions = {name: kind.checkpoint_from(name, resume_from) for name in chosen}
    except NotImplementedError as exc:
        raise ServiceError(str(exc), code="unsupported")
    except ValueError as exc:
        raise ServiceError(str(exc), code="out_of_range", field="resume_from")
    existing = set(source.checkpoints.filter(stream__in=chosen).values_list("stream", "tenant_id"))
    tenant_ids = set(source.tenants.filter(active=True).values_list("tenant_id", flat=True))
    targets = existing | {(name, tid) for name in chosen for tid in tenant_ids}
    if not targets:
        raise ServiceError(
            f"Source {source.name} has not found its tenants yet, so there is no checkpoint to "
            "set; its first run reads as far back as the vendor serves. Reset after that run.",
            code="no_tenants",
        )
    who = user.get_username() if user is not None and user.is_authenticated else "a user"
    what = stream or "all streams"
    with transaction.atomic():
        # Held to the end (PostgreSQL; SQLite serialises writers): a delete cannot slip in
        # between this check and the restart, which would bring a stopping source back.
        state = Source.objects.select_for_update().filter(pk=source.pk).values_list("state")
        if state.first() in (None, (SourceState.STOPPING,)):
            raise ServiceError(f"Source {source.name} is being deleted.", code="stopping")
        # The restart before the checkpoints: it bumps config_version and writes the source's
        # and its tenants' rows, which a worker's page transaction also writes (its claim). So a
        # worker's page either commits first (and is overwritten here), or waits and then reads
        # the new version and stops: no run writes its old position over the reset one.
        engine.reset_to_pending(
            source.pk,
            reason=f"Checkpoint of {what} reset to {resume_from:%Y-%m-%d %H:%M:%S} UTC by {who}.",
        )
        for name, tenant_id in sorted(targets):
            Checkpoint.objects.update_or_create(
                source=source,
                stream=name,
                tenant_id=tenant_id,
                defaults={
                    "position": positions[name],
                    "data_until": resume_from,
                    "updated_at": now,
                },
            )
    source.refresh_from_db()
    return source


def pause_source(*, source: Source) -> Source:
    engine.pause(source.pk)
    source.refresh_from_db()
    return source


def resume_source(*, source: Source) -> Source:
    engine.resume(source.pk)
    source.refresh_from_db()
    return source


def delete_source(*, source: Source) -> None:
    """Asynchronous delete: the source goes to Stopping and disappears once no worker holds it."""
    engine.request_stop(source.pk)


# --- test connection --------------------------------------------------------------------------
TEST_DEADLINE_SECONDS = 10
SHOWN_SAMPLES = 5


@dataclass
class ConnectionTest:
    """What a Test connection found, for the page: form problems, or the kind's report."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    failure: str = ""
    report: ConnectionReport | None = None
    samples: list[tuple[ItemLine, dict]] = field(default_factory=list)

    @property
    def regions(self) -> list[str]:
        identity = self.report.identity if self.report else None
        if identity is None:
            return []
        return sorted({t.region for t in identity.tenants if t.region} | {identity.region} - {""})


def test_connection(*, form, stored: Source | None = None) -> ConnectionTest:
    """Try the credentials of a bound source form through its kind; nothing is saved.

    Only the kind's own fields must be valid (a missing name does not stop a test). A blank
    secret on an edit means the stored one, decrypted here and never sent back. Never raises.
    """
    form.is_valid()
    common = form.common_field_names()
    problems = {
        form[name].label: errors
        for name, errors in form.errors.items()
        if name not in common and name != "__all__"
    }
    if problems:
        return ConnectionTest(problems=problems)
    secret = form.new_secret()
    try:
        if not secret and stored is not None:
            secret = stored.get_secret().reveal()
    except DecryptionError as exc:
        return ConnectionTest(failure=f"{exc} Enter the secret again.")
    kind = get_kind(form.kind_name)
    try:
        report = kind.test_connection(
            config=form.kind_config(), secret=secret, deadline=TEST_DEADLINE_SECONDS
        )
    except Exception as exc:  # a kind must never raise here; if one does, say so
        return ConnectionTest(failure=f"The connection test could not run ({type(exc).__name__}).")
    samples = [(kind.describe_item(item), item) for item in report.samples[:SHOWN_SAMPLES]]
    return ConnectionTest(report=report, samples=samples)


# --- field checks -----------------------------------------------------------------------------
MAX_CHECKED_FIELDS = 20


def check_field_names(names) -> dict[str, dict[str, str]]:
    """``{name: {"status", "message"}}`` for the live check icons of the fields widget.

    Statuses: ``enabled``, ``builtin`` (green); ``missing``, ``disabled`` (orange: added or
    enabled on save when asked); ``invalid``. One query, whatever the number of names.
    """
    names = [n.strip() for n in names if n and n.strip()][:MAX_CHECKED_FIELDS]
    # Only a well-formed name can be in the schema; others are not looked up (PostgreSQL refuses
    # to compare text holding NUL).
    lookup = [n.lower() for n in names if FIELD_NAME_RE.fullmatch(n)]
    known = {
        row["lname"]: row["enabled"]
        for row in Field.objects.annotate(lname=Lower("name"))
        .filter(lname__in=lookup)
        .values("lname", "enabled")
    }
    answer = {}
    for name in names:
        if name in SETTABLE_BUILTIN_FIELDS:
            answer[name] = {"status": "builtin", "message": "A built-in field."}
            continue
        try:
            validate_field_name(name)
        except ValidationError as exc:
            answer[name] = {"status": "invalid", "message": " ".join(exc.messages)}
            continue
        enabled = known.get(name.lower())
        if enabled is None:
            answer[name] = {
                "status": "missing",
                "message": "This field does not exist in the Fields schema; it will be dropped "
                "unless it is added.",
            }
        elif not enabled:
            answer[name] = {
                "status": "disabled",
                "message": "This field is disabled in the Fields schema; it will be dropped "
                "unless it is enabled.",
            }
        else:
            answer[name] = {"status": "enabled", "message": "Exists and is enabled."}
    return answer


# --- fields schema ----------------------------------------------------------------------------
def create_field(*, name: str) -> Field:
    with transaction.atomic():
        if Field.objects.count() >= MAX_CUSTOM_FIELDS:
            raise ServiceError(
                f"The Fields schema is full: at most {MAX_CUSTOM_FIELDS} custom fields.",
                code="field:quota_reached",
            )
        if Field.objects.filter(name__iexact=name).exists():
            raise ServiceError(
                f"A field named {name!r} already exists.", code="field:already_exists"
            )
        try:
            return Field.objects.create(name=name)
        except IntegrityError:
            raise ServiceError(
                f"A field named {name!r} already exists.", code="field:already_exists"
            )


def ensure_fields(*, names) -> list[Field]:
    """Create or enable each custom field name (built-ins starting with ``_`` are skipped)."""
    result = []
    for name in names:
        if name.startswith("_"):
            continue
        field = Field.objects.filter(name__iexact=name).first()
        if field is None:
            field = create_field(name=name)
        elif not field.enabled:
            field.enabled = True
            field.save(update_fields=["enabled"])
        result.append(field)
    return result


def set_field_enabled(*, field: Field, enabled: bool) -> Field:
    field.enabled = enabled
    field.save(update_fields=["enabled"])
    return field


def field_users(name: str) -> tuple[list[Collector], list[Source]]:
    """Collectors and sources whose fields name this field (case-insensitive)."""
    lowered = name.lower()
    collectors = [
        c
        for c in Collector.objects.only("id", "name", "fields")
        if lowered in _lower_keys(c.fields)
    ]
    sources = [
        s
        for s in Source.objects.select_related("collector").only(
            "id", "name", "fields", "collector__name"
        )
        if lowered in _lower_keys(s.fields)
    ]
    return collectors, sources


def field_usage_counts() -> dict[str, tuple[int, int]]:
    """``{lowercase name: (collectors using it, sources using it)}`` in two queries."""
    counts: dict[str, list[int]] = {}
    for fields in Collector.objects.values_list("fields", flat=True):
        for key in _lower_keys(fields):
            counts.setdefault(key, [0, 0])[0] += 1
    for fields in Source.objects.values_list("fields", flat=True):
        for key in _lower_keys(fields):
            counts.setdefault(key, [0, 0])[1] += 1
    return {key: (a, b) for key, (a, b) in counts.items()}


def delete_field(*, field: Field) -> None:
    """Delete a field unless a collector or source still uses it (refused, naming them)."""
    collectors, sources = field_users(field.name)
    if collectors or sources:
        names = [f"collector {c.name!r}" for c in collectors] + [
            f"source {s.name!r} on {s.collector.name!r}" for s in sources
        ]
        raise ServiceError(
            f"Field {field.name!r} is still used by {', '.join(names)}. Remove it there first.",
            code="field:in_use",
        )
    field.delete()


def _lower_keys(fields) -> set[str]:
    return {str(key).lower() for key in (fields or {})}


def search_sources(query: str):
    """Sources whose name or category matches ``query`` (see ``search.name_search_q``)."""
    query = query.strip()
    if not query:
        return Source.objects.all()
    return Source.objects.filter(name_search_q(query, "name", "category"))


# --- destinations -----------------------------------------------------------------------------
def _apply_destination_form(destination: Destination, form) -> None:
    cleaned = form.cleaned_data
    destination.name = cleaned["name"]
    destination.description = cleaned.get("description", "")
    destination.route = cleaned.get("route", "")
    destination.siem = bool(cleaned.get("siem"))
    destination.config = form.kind_config()
    secret = form.new_secret()
    if secret:
        destination.set_secret(secret)


def create_destination(*, form, user=None) -> Destination:
    """Store a validated destination; it starts after the newest stored message (``new``) or
    with everything still stored (``all``), and its first delivery is queued at once."""
    destination = Destination(kind=form.kind_name)
    if user is not None and user.is_authenticated:
        destination.created_by = user
    _apply_destination_form(destination, form)
    start = form.cleaned_data.get("start_from") or "new"
    destination.next_poll_at = timezone.now()
    try:
        with transaction.atomic():
            # Under the commit-order lock, so no page can commit below the starting cursor.
            hold_clock()
            newest = Message.objects.order_by("-id").values_list("id", flat=True).first()
            destination.cursor = (newest or 0) if start == "new" else 0
            destination.save()
            transaction.on_commit(lambda: kick_delivery(destination.pk))
    except IntegrityError:
        raise ServiceError(
            f"A destination named {destination.name!r} already exists.",
            code="duplicate",
            field="name",
        )
    return destination


def update_destination(*, destination: Destination, form) -> Destination:
    """Store an edit: the retry streak clears (a config error waits for exactly this) and a
    running delivery stops at its next batch; the cursor is kept."""
    _apply_destination_form(destination, form)
    try:
        with transaction.atomic():
            destination.save()
            Destination.objects.filter(pk=destination.pk).update(
                config_version=F("config_version") + 1,
                state=DestinationState.PAUSED if destination.paused else DestinationState.PENDING,
                state_detail="Edited by a user.",
                next_poll_at=timezone.now(),
                **engine.CLEAR_STREAK,
            )
            transaction.on_commit(lambda: kick_delivery(destination.pk))
    except IntegrityError:
        raise ServiceError(
            f"A destination named {destination.name!r} already exists.",
            code="duplicate",
            field="name",
        )
    destination.refresh_from_db()
    return destination


def pause_destination(*, destination: Destination) -> Destination:
    """No deliveries while paused; the backlog is kept (the purge waits for it)."""
    Destination.objects.filter(pk=destination.pk).update(
        paused=True,
        state=DestinationState.PAUSED,
        state_detail="Paused by a user; the backlog is kept.",
        state_changed_at=timezone.now(),
        config_version=F("config_version") + 1,
    )
    destination.refresh_from_db()
    return destination


def resume_destination(*, destination: Destination) -> Destination:
    Destination.objects.filter(pk=destination.pk).update(
        paused=False,
        state=DestinationState.PENDING,
        state_detail="Resumed by a user.",
        state_changed_at=timezone.now(),
        next_poll_at=timezone.now(),
        **engine.CLEAR_STREAK,
    )
    transaction.on_commit(lambda: kick_delivery(destination.pk))
    destination.refresh_from_db()
    return destination


def delete_destination(*, destination: Destination) -> None:
    """Delete at once; a running delivery notices at its next acknowledgement and stops. Its
    open health events resolve, and the purge no longer waits for its backlog."""
    with transaction.atomic():
        engine.resolve_deleted_destination(destination, reason="The destination was deleted.")
        destination.delete()


@dataclass
class TestResult:
    ok: bool
    message: str


def send_test_message(*, destination: Destination, form=None, user=None) -> TestResult:
    """Send one clearly marked message through the destination's kind and say, in plain words,
    what the receiver answered. With ``form`` (an Add or Edit form being filled in), its settings
    are used; a blank secret means the stored one. Nothing is saved; never raises."""
    from collector.destinations import get_destination_kind
    from collector.destinations.base import Outgoing
    from collector.errors import CollectionError

    kind_name = form.kind_name if form is not None else destination.kind
    try:
        kind = get_destination_kind(kind_name)
        if form is not None:
            config, secret = form.kind_config(), form.new_secret()
        else:
            config, secret = destination.config, ""
        if not secret and destination is not None and destination.has_secret:
            secret = destination.get_secret().reveal()
    except DecryptionError as exc:
        return TestResult(False, f"{exc} Enter the secret again.")
    except LookupError:
        return TestResult(False, f"The destination kind {kind_name!r} is not installed.")
    moment = timezone.now()
    who = f" by {user.get_username()}" if user is not None and user.is_authenticated else ""
    body = {
        "message": "Sumo Sources test message",
        "test": True,
        "destination": destination.name
        if destination is not None
        else form.cleaned_data.get("name", ""),
        "sentAt": moment.isoformat(),
        "sentBy": who.removeprefix(" by "),
    }
    test = Outgoing(
        id=0,
        raw=json.dumps(body, separators=(",", ":")),
        metadata={
            "_source": "Sumo Sources",
            "_sourceCategory": "sumosources/test",
            "_collector": "",
            "_sourceName": "Test",
            "tenant": "",
        },  # fmt: skip
        message_time=moment,
        receipt_time=moment,
        test=True,
    )
    try:
        with kind.open(config=config, secret=secret) as session:
            result = session.send([test])
    except CollectionError as exc:
        return TestResult(False, f"{exc.message} {exc.remedy}".strip())
    except Exception as exc:  # a kind must answer in words; if it cannot, say so
        return TestResult(False, f"The test could not be sent ({type(exc).__name__}).")
    return TestResult(True, f"Sent a test message{who}. The receiver answered: {result.summary}")
