"""One table per concept of the product (design section 2).

Rows hold durable facts (state, streak counters, checkpoints); what pages show is computed from
them in one place (collector.status). Business rules that span rows live in collector.services and
collector.engine, never in save() or signals.
"""

import secrets
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from collector.choices import DestinationState, ErrorType, Severity, SourceState
from collector.validators import (
    validate_field_name,
    validate_fields_map,
    validate_time_zone,
)


class Collector(models.Model):
    """A Hosted Collector: a named group of sources whose category and fields they inherit."""

    name = models.CharField(max_length=128)
    description = models.CharField(max_length=1024, blank=True)
    category = models.CharField(max_length=1024, blank=True)
    fields = models.JSONField(default=dict, blank=True, validators=[validate_fields_map])
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Unique without regard to case, like field names: "EU" and "eu" would be told apart by
        # nobody reading _collector in search results or a SIEM.
        constraints = [models.UniqueConstraint(Lower("name"), name="collector_name_unique_ci")]

    def __str__(self):
        return self.name


class ClaimedWorkQuerySet(models.QuerySet):
    def runnable(self):
        """Rows a task may work on now (whether or not they are due)."""
        return self.filter(self.model.runnable_q())

    def due(self, moment):
        """Runnable rows whose next poll has come."""
        return self.runnable().filter(next_poll_at__lte=moment)


class ClaimedWork(models.Model):
    """A unit of work of the engine: claimed by compare-and-swap, scheduled, with a retry streak.

    Sources and tenants (and later destinations) are units of work; the engine claims, schedules
    and retries them all the same way (collector.engine.claims and .health). Each concrete model
    says once, in :meth:`runnable_q`, when a task may work on it.
    """

    # Scheduling and claims (compare-and-swap; see collector.engine.claims).
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)

    # The retry streak of this unit's failures.
    error_type = models.CharField(max_length=32, choices=ErrorType.choices, blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    streak_started_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set when retries stopped (a config error, or the give-up time passed); cleared by an edit or a
    # restart. A halted unit is never dispatched.
    halted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    objects = ClaimedWorkQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def runnable_q(cls) -> models.Q:
        """When a task may work on a row of this unit; every concrete unit defines it (an abstract
        method: Django models cannot take ABCMeta)."""
        raise NotImplementedError(f"{cls.__name__} must say when it is runnable")


def source_runnable_q(prefix: str = "") -> models.Q:
    """When a source may run: not paused, not halted, not being deleted. Written once, and used
    with ``prefix="source__"`` for the work that belongs to a source."""
    return models.Q(**{f"{prefix}paused": False, f"{prefix}halted_at__isnull": True}) & ~models.Q(
        **{f"{prefix}state": SourceState.STOPPING}
    )


class Source(ClaimedWork):
    """A source of one registered kind (collector.kinds) on a collector, with its lifecycle facts.

    The secret is stored encrypted in ``secret_encrypted`` (see collector.crypto); use
    :meth:`set_secret` and :meth:`get_secret`, never the column.
    """

    collector = models.ForeignKey(Collector, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(max_length=64)
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=1024, blank=True)
    category = models.CharField(max_length=1024, blank=True)
    fields = models.JSONField(default=dict, blank=True, validators=[validate_fields_map])
    forward_to_siem = models.BooleanField(default=False)
    # Non-secret, kind-specific configuration in the API's key names (the kind's config_keys).
    config = models.JSONField(default=dict, blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False)
    polling_interval = models.PositiveIntegerField(
        default=300,
        validators=[
            MinValueValidator(settings.POLLING_INTERVAL_MIN),
            MaxValueValidator(settings.POLLING_INTERVAL_MAX),
        ],
        help_text="Seconds between polls.",
    )

    # Lifecycle facts. ``state`` only changes through collector.engine.transition().
    state = models.CharField(
        max_length=16, choices=SourceState.choices, default=SourceState.PENDING
    )
    state_detail = models.CharField(max_length=1024, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    paused = models.BooleanField(default=False)
    # Bumped on every edit or restart; a running worker compares it at page boundaries and stops
    # when the configuration it loaded is no longer the current one.
    config_version = models.PositiveIntegerField(default=1)

    # Identity found by the last authentication (``identity_type`` in the kind's own words).
    identity_type = models.CharField(max_length=16, blank=True)
    identity_id = models.CharField(max_length=64, blank=True)
    region = models.CharField(max_length=32, blank=True)
    # Whether each tenant runs as a task of its own (collector.kinds.base.Identity.fans_out).
    fans_out = models.BooleanField(default=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["collector__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["collector", "name"], name="source_name_unique_per_collector"
            )
        ]
        indexes = [models.Index(fields=["state", "paused"], name="source_state_idx")]

    def __str__(self):
        return f"{self.name} ({self.collector_id and self.collector.name})"

    def __repr__(self):
        # Spelled out so that no default repr can ever include the secret column.
        return f"<Source {self.pk} {self.name!r} state={self.state}>"

    # --- secret -------------------------------------------------------------------------------
    def set_secret(self, plain: str) -> None:
        from collector import crypto

        self.secret_encrypted = crypto.encrypt(plain)

    def get_secret(self) -> "crypto.Secret":  # noqa: F821 - imported lazily
        from collector import crypto

        return crypto.Secret(crypto.decrypt(self.secret_encrypted))

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)

    # --- derived ------------------------------------------------------------------------------
    @property
    def effective_category(self) -> str:
        return self.category or (self.collector.category if self.collector_id else "")

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams this source collects, as its kind reads them from its config."""
        from collector.kinds import get_kind

        try:
            return get_kind(self.kind).source_streams(self.config or {})
        except LookupError:
            return ()

    @classmethod
    def runnable_q(cls) -> models.Q:
        return source_runnable_q()

    RESOURCE_TYPE = "Source"
    gives_up = True

    def health_resource(self) -> dict:
        """Who a health event of this source is about (the Sumo resourceIdentity)."""
        return {"id": str(self.pk), "name": self.name, "type": self.RESOURCE_TYPE,
                "collectorId": str(self.collector_id), "collectorName": self.collector.name}  # fmt: skip


class Destination(ClaimedWork):
    """Where collected messages go onward: a receiver of one registered kind (collector.destinations)
    with a route that selects its messages, and the cursor up to which they were delivered.

    ``cursor`` is a message id: messages are committed in id order (collector.delivery.clock),
    so everything at or below it was delivered and nothing above it can still appear below it.
    The secret (token, password, client secret) is stored encrypted, like a source's.
    """

    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=64)
    description = models.CharField(max_length=1024, blank=True)
    config = models.JSONField(default=dict, blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False)
    route = models.CharField(max_length=1024, blank=True, help_text="Log Search metadata terms.")
    siem = models.BooleanField(
        default=False, help_text="Also receives every source with Forward to SIEM on."
    )
    paused = models.BooleanField(default=False)
    state = models.CharField(
        max_length=16, choices=DestinationState.choices, default=DestinationState.PENDING
    )
    state_detail = models.CharField(max_length=1024, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    # Bumped on every edit, pause or delete; a running delivery stops at its next batch.
    config_version = models.PositiveIntegerField(default=1)
    cursor = models.BigIntegerField(default=0)
    delivered_total = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    RESOURCE_TYPE = "Destination"
    gives_up = False  # never, while its data is retained (design section 11)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="destination_name_unique_ci")]

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<Destination {self.pk} {self.name!r} state={self.state}>"

    @classmethod
    def runnable_q(cls) -> models.Q:
        return models.Q(paused=False, halted_at__isnull=True)

    def set_secret(self, plain: str) -> None:
        from collector import crypto

        self.secret_encrypted = crypto.encrypt(plain)

    def get_secret(self):
        from collector import crypto

        return (
            crypto.Secret(crypto.decrypt(self.secret_encrypted))
            if self.secret_encrypted
            else crypto.Secret("")
        )

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)

    def health_resource(self) -> dict:
        return {"id": str(self.pk), "name": self.name, "type": self.RESOURCE_TYPE,
                "collectorId": "", "collectorName": ""}  # fmt: skip


class DeliveryBucket(models.Model):
    """Messages delivered per destination in five-minute buckets, for sparklines."""

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="buckets")
    start = models.DateTimeField()
    messages = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["destination", "start"]
        constraints = [
            models.UniqueConstraint(fields=["destination", "start"], name="delivery_bucket_unique")
        ]

    def __str__(self):
        return f"{self.destination_id} {self.start:%H:%M}: {self.messages}"


class SourceTransition(models.Model):
    """One recorded state change of a source, for its timeline."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="transitions")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    from_state = models.CharField(max_length=16, choices=SourceState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=SourceState.choices)
    reason = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.source_id}: {self.from_state or '-'} -> {self.to_state} at {self.at:%Y-%m-%d %H:%M:%S}"


class Tenant(ClaimedWork):
    """A vendor tenant a source collects from.

    Every source has at least one. When the source's credential fans out (``Source.fans_out``),
    each tenant is a unit of work of its own: claims and the retry streak of tenant-level
    failures live here, so one failing tenant never holds up the others.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="tenants")
    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    api_host = models.CharField(max_length=255)
    region = models.CharField(max_length=32, blank=True)
    active = models.BooleanField(default=True, help_text="Still listed by the vendor.")

    class Meta:
        ordering = ["source", "name", "tenant_id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "tenant_id"], name="tenant_unique_per_source")
        ]

    def __str__(self):
        return self.name or self.tenant_id

    gives_up = True

    @classmethod
    def runnable_q(cls) -> models.Q:
        """A tenant runs on its own only for a fanning-out source that may itself run."""
        return models.Q(
            active=True, halted_at__isnull=True, source__fans_out=True
        ) & source_runnable_q("source__")


class Checkpoint(models.Model):
    """Where a stream of one tenant of a source resumes; written with the page it follows."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="checkpoints")
    stream = models.CharField(max_length=32)
    tenant_id = models.CharField(max_length=64)
    position = models.JSONField(default=dict)
    # Newest message time stored so far: "how far behind" is now minus this.
    data_until = models.DateTimeField(null=True, blank=True)
    items_total = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source", "stream", "tenant_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "stream", "tenant_id"], name="checkpoint_unique_per_stream"
            )
        ]

    def __str__(self):
        return f"{self.source_id}/{self.stream}/{self.tenant_id}"


class CollectionRun(models.Model):
    """One task's work on one stream of one tenant: what it fetched and how it ended."""

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        ERROR = "error"
        STOPPED = "stopped"

    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    source_name = models.CharField(max_length=128)
    stream = models.CharField(max_length=32, blank=True)
    tenant_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return (
            f"{self.source_name} {self.stream} {self.started_at:%Y-%m-%d %H:%M:%S} {self.outcome}"
        )

    @property
    def duration(self):
        return (self.ended_at - self.started_at) if self.ended_at else None


class IngestBucket(models.Model):
    """Items stored per source and stream in five-minute buckets: sparklines and charts read these
    instead of counting the message table."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="buckets")
    stream = models.CharField(max_length=32)
    start = models.DateTimeField()
    items = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["source", "start"]
        constraints = [
            models.UniqueConstraint(fields=["source", "stream", "start"], name="bucket_unique")
        ]
        indexes = [models.Index(fields=["start"], name="bucket_start_idx")]

    def __str__(self):
        return f"{self.source_id}/{self.stream} {self.start:%H:%M}: {self.items}"


class Field(models.Model):
    """A custom field of the Fields schema; only enabled fields are applied to new data."""

    name = models.CharField(max_length=255, validators=[validate_field_name])
    field_id = models.CharField(max_length=16, unique=True, editable=False)
    data_type = models.CharField(max_length=16, default="String", editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="field_name_unique_ci")]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.field_id:
            self.field_id = secrets.token_hex(8).upper()
        super().save(*args, **kwargs)

    @property
    def state(self) -> str:
        return "Enabled" if self.enabled else "Disabled"


class DroppedField(models.Model):
    """A field name that arrived on data but is missing or disabled in the schema, so was dropped."""

    name = models.CharField(max_length=255, unique=True)
    count = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    last_source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_resource = models.CharField(max_length=300, blank=True, help_text="Where it came from.")

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self):
        return f"{self.name} ({self.count})"


class HealthEvent(models.Model):
    """One incident of one resource: open while ``resolved_at`` is empty.

    ``scope`` tells incidents of the same resource and event name apart (``""`` for the whole
    source, ``tenant:<id>`` for one tenant, ``gap:<stream>:<tenant>`` for a data gap).
    ``details`` never holds a secret or a token.
    """

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_name = models.CharField(max_length=64)
    error_type = models.CharField(max_length=32, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    subsystem = models.CharField(max_length=32, default="Collection")
    resource_type = models.CharField(max_length=32, default="Source")
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="health_events"
    )
    resource_id = models.CharField(max_length=64)
    resource_name = models.CharField(max_length=128)
    collector_id = models.CharField(max_length=64, blank=True)
    collector_name = models.CharField(max_length=128, blank=True)
    scope = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    count = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "resource_id", "event_name", "scope"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_event_per_incident",
            )
        ]
        indexes = [models.Index(fields=["resolved_at", "-last_seen"], name="health_open_idx")]

    def __str__(self):
        return f"{self.event_name} on {self.resource_name} ({self.severity})"

    def as_sumo(self, *, at=None) -> dict:
        """The Sumo Logic health event shape (sumo-api.md); ``eventTime`` is ``at`` or last seen."""
        from collector.shapes import iso  # shapes reads models: imported when first used

        return {
            "eventId": str(self.event_id),
            "eventName": self.event_name,
            "details": self.details,
            "resourceIdentity": {
                "id": self.resource_id,
                "name": self.resource_name,
                "type": self.resource_type,
                "collectorId": self.collector_id,
                "collectorName": self.collector_name,
            },
            "eventTime": iso(at or self.last_seen),
            "subsystem": self.subsystem,
            "severityLevel": self.severity,
        }


class Message(models.Model):
    """One collected item, stored as the vendor sent it, with Sumo-style metadata.

    Health event log records are messages too, with ``index`` = ``sumologic_system_events``.
    ``source`` becomes empty when the source is deleted; the denormalised names keep the metadata.
    """

    source = models.ForeignKey(
        Source,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,
    )
    index = models.CharField(
        max_length=64, blank=True, help_text="_index; empty for collected data"
    )
    stream = models.CharField(max_length=32, blank=True, help_text="_sourceName")
    tenant_id = models.CharField(max_length=64, blank=True)
    tenant_name = models.CharField(max_length=255, blank=True)
    vendor_id = models.CharField(max_length=128)
    source_name = models.CharField(max_length=128, help_text="_source")
    source_category = models.CharField(max_length=1024, blank=True, help_text="_sourceCategory")
    collector_name = models.CharField(max_length=128, blank=True, help_text="_collector")
    siem_event_id = models.CharField(max_length=64, blank=True, help_text="_siemEventID")
    fields = models.JSONField(default=dict, help_text="custom and SIEM fields applied")
    raw = models.TextField(help_text="the vendor JSON as received")
    message_time = models.DateTimeField()
    receipt_time = models.DateTimeField()

    class Meta:
        ordering = ["-message_time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "stream", "tenant_id", "vendor_id"], name="message_unique_item"
            )
        ]
        indexes = [
            models.Index(fields=["message_time"], name="message_time_idx"),
            models.Index(fields=["source_category", "message_time"], name="message_category_idx"),
            # Only health-event records have an index name; collected items skip this index.
            models.Index(
                fields=["index", "message_time"],
                name="message_index_idx",
                condition=~models.Q(index=""),
            ),
        ]

    def __str__(self):
        return f"{self.source_name}/{self.stream} {self.vendor_id}"


class AccessKey(models.Model):
    """An API access id and key pair; only a SHA-256 digest of the key is stored.

    Keys are 32 random bytes, so a fast digest is as safe as a slow password hash and lets every
    API request be checked without a 300 ms PBKDF2 round.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys"
    )
    label = models.CharField(max_length=128, blank=True)
    access_id = models.CharField(max_length=32, unique=True, editable=False)
    key_digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.access_id} ({self.user})"
