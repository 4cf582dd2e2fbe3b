"""The one exception every collection failure becomes, whatever its origin.

Source kinds raise :class:`CollectionError` with the error type already decided (they know their
vendor's responses); the engine raises it with ``FIRST_PARTY_GENERIC`` for our own failures. The
engine only ever reads the attributes, so the health event details are built in one place.
"""

from collector.choices import ErrorType


class CollectionError(Exception):
    """A classified failure of a collection step.

    ``message`` is one human sentence of cause, ``remedy`` one of what to do. Neither, nor any other
    attribute, may contain a secret or a token: they are shown to users and stored in health events.
    ``tenant_scoped`` marks a failure that concerns only ``tenant_id`` (for example a 403 for one
    tenant of a credential that fans out), so the other tenants go on.
    """

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        remedy: str = "",
        status: int | None = None,
        vendor_code: str = "",
        correlation_id: str = "",
        api: str = "",
        tenant_id: str = "",
        tenant_name: str = "",
        retry_after: float | None = None,
        tenant_scoped: bool = False,
    ):
        super().__init__(message)
        self.error_type = ErrorType(error_type)
        self.message = message
        self.remedy = remedy
        self.status = status
        self.vendor_code = vendor_code
        self.correlation_id = correlation_id
        self.api = api
        self.tenant_id = tenant_id
        self.tenant_name = tenant_name
        self.retry_after = retry_after
        self.tenant_scoped = tenant_scoped

    @property
    def retries(self) -> bool:
        return self.error_type.retries

    def details(self) -> dict:
        """The health event ``details`` object (Sumo shape plus our context keys)."""
        data = {
            "trackerId": self.error_type.value,
            "error": self.message,
            "description": self.remedy,
        }
        for key, value in (
            ("status", self.status),
            ("vendorCode", self.vendor_code),
            ("correlationId", self.correlation_id),
            ("api", self.api),
            ("tenantId", self.tenant_id),
            ("tenantName", self.tenant_name),
            ("retryAfter", self.retry_after),
        ):
            if value not in (None, ""):
                data[key] = value
        return data

    def __repr__(self) -> str:
        return (
            f"CollectionError({self.error_type.value}, {self.message!r}, status={self.status}, "
            f"api={self.api!r}, tenant={self.tenant_id!r})"
        )
