"""States, error types and severities, each with everything the display needs.

One source of truth for status display: the template tag and the JSON endpoints read label, icon,
colour and description from here, so a state looks the same everywhere.
"""

from dataclasses import dataclass

from django.db import models


class SourceState(models.TextChoices):
    PENDING = "Pending"
    STARTED = "Started"
    INITIALIZED = "Initialized"
    AUTHENTICATED = "Authenticated"
    COLLECTING = "Collecting"
    ERROR = "Error"
    STOPPING = "Stopping"
    PAUSED = "Paused"


class DestinationState(models.TextChoices):
    PENDING = "Pending"
    DELIVERING = "Delivering"
    IDLE = "Idle"
    ERROR = "Error"
    PAUSED = "Paused"


class Health(models.TextChoices):
    """What the status icon says at a glance; the shape differs per value, not only the colour."""

    HEALTHY = "Healthy"
    PROGRESS = "InProgress"
    WARNING = "Warning"
    ERROR = "Error"
    PAUSED = "Paused"


@dataclass(frozen=True)
class Look:
    label: str
    icon: str  # name of an inline SVG symbol in templates/collector/icons.svg
    colour: str  # a Bootstrap contextual colour
    description: str


STATE_LOOK: dict[str, Look] = {
    SourceState.PENDING: Look(
        "Pending",
        "hourglass",
        "secondary",
        "The source is validated and stored; collection will start shortly.",
    ),
    SourceState.STARTED: Look(
        "Started", "hourglass", "info", "A collection task has been created for the source."
    ),
    SourceState.INITIALIZED: Look(
        "Initialized", "hourglass", "info", "A worker has loaded the source's configuration."
    ),
    SourceState.AUTHENTICATED: Look(
        "Authenticated",
        "key",
        "info",
        "The source authenticated with the vendor and is about to collect.",
    ),
    SourceState.COLLECTING: Look(
        "Collecting", "check-circle", "success", "The source is healthy and collecting data."
    ),
    SourceState.ERROR: Look(
        "Error", "x-octagon", "danger", "The source has a problem; see its health events."
    ),
    SourceState.STOPPING: Look(
        "Stopping", "stop-circle", "secondary", "The source was deleted and is stopping."
    ),
    SourceState.PAUSED: Look(
        "Paused", "pause-circle", "secondary", "Collection is paused; checkpoints are kept."
    ),
}

DESTINATION_STATE_LOOK: dict[str, Look] = {
    DestinationState.PENDING: Look(
        "Pending", "hourglass", "secondary", "Stored; the first delivery starts shortly."
    ),
    DestinationState.DELIVERING: Look(
        "Delivering", "check-circle", "success", "Delivering messages as they are stored."
    ),
    DestinationState.IDLE: Look(
        "Idle", "check-circle", "success", "Everything routed here has been delivered."
    ),
    DestinationState.ERROR: Look(
        "Error", "x-octagon", "danger", "Delivery is failing; see its health events."
    ),
    DestinationState.PAUSED: Look(
        "Paused", "pause-circle", "secondary", "Delivery is paused; the backlog is kept."
    ),
}

HEALTH_LOOK: dict[str, Look] = {
    Health.HEALTHY: Look("Healthy", "check-circle", "success", "Collecting normally."),
    Health.PROGRESS: Look("Starting", "hourglass", "info", "Starting up."),
    Health.WARNING: Look("Warning", "exclamation-triangle", "warning", "Collecting with problems."),
    Health.ERROR: Look("Error", "x-octagon", "danger", "Not collecting."),
    Health.PAUSED: Look("Paused", "pause-circle", "secondary", "Paused by a user."),
}


class ErrorType(models.TextChoices):
    """The three failure classes of the seed; the value doubles as the health event's trackerId."""

    THIRD_PARTY_CONFIG = "ThirdPartyConfig"
    THIRD_PARTY_GENERIC = "ThirdPartyGeneric"
    FIRST_PARTY_GENERIC = "FirstPartyGeneric"

    @property
    def event_name(self) -> str:
        return f"{self.value}Error"

    @property
    def retries(self) -> bool:
        return self is not ErrorType.THIRD_PARTY_CONFIG


class Severity(models.TextChoices):
    WARNING = "Warning"
    ERROR = "Error"


# Health event names that are not error types.
DATA_GAP_EVENT = "DataGapWarning"
SYSTEM_EVENTS_INDEX = "sumologic_system_events"
