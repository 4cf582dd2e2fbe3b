"""Django admin for every model: secrets masked, and never a second write path.

What the product's services own (collectors, sources and their config and secrets, access keys,
the Fields schema's names) is read-only here, with a link to the product's own page, where the
same form and service as the UI and the API validate it and tell a running worker. Collected data
and health events are read-only records.
"""

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from collector.crypto import MASK
from collector.models import (
    AccessKey,
    Checkpoint,
    CollectionRun,
    Collector,
    DeliveryBucket,
    Destination,
    DroppedField,
    Field,
    HealthEvent,
    IngestBucket,
    Message,
    Source,
    SourceTransition,
    Tenant,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the product writes; people read them, never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ProductOwnedAdmin(ReadOnlyAdmin):
    """Rows a product service owns: shown here, changed (and deleted) only on the product's page,
    which ``product_link`` opens."""

    product_url_name = ""
    readonly_fields = ("product_link",)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever may change the row in the product may look at it here.
        opts = self.opts
        return super().has_view_permission(request, obj) or request.user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}"
        )

    def product_url(self, obj) -> str:
        try:
            return reverse(self.product_url_name, args=[obj.pk]) if obj.pk else ""
        except NoReverseMatch:
            return ""

    @admin.display(description="Change it in Sumo Sources")
    def product_link(self, obj):
        url = self.product_url(obj)
        return format_html('<a href="{}">Open the product page</a>', url) if url else "-"


@admin.register(Collector)
class CollectorAdmin(ProductOwnedAdmin):
    list_display = ("name", "category", "time_zone", "created_at", "product_link")
    search_fields = ("name", "description", "category")
    list_filter = ("time_zone",)
    product_url_name = "collector:collector_edit"


class TenantInline(admin.TabularInline):
    model = Tenant
    extra = 0
    fields = ("tenant_id", "name", "region", "active", "failure_count", "last_success_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Source)
class SourceAdmin(ProductOwnedAdmin):
    list_display = (
        "name",
        "collector",
        "kind",
        "state",
        "paused",
        "polling_interval",
        "last_success_at",
        "product_link",
    )
    product_url_name = "collector:source_detail"
    list_filter = ("state", "paused", "kind", "forward_to_siem", "collector")
    search_fields = ("name", "category", "description", "collector__name")
    list_select_related = ("collector",)
    readonly_fields = (
        "product_link",
        "collector",
        "kind",
        "name",
        "description",
        "category",
        "fields",
        "forward_to_siem",
        "config",
        "polling_interval",
        "secret_display",
        "paused",
        "fans_out",
        "next_poll_at",
        "state",
        "state_detail",
        "state_changed_at",
        "config_version",
        "claimed_at",
        "queued_at",
        "identity_type",
        "identity_id",
        "region",
        "error_type",
        "failure_count",
        "streak_started_at",
        "next_attempt_at",
        "halted_at",
        "last_error",
        "last_success_at",
        "created_at",
        "updated_at",
    )
    exclude = ("claim_token", "secret_encrypted", "created_by")
    inlines = [TenantInline]

    @admin.display(description="Secret")
    def secret_display(self, obj):
        return MASK if obj.has_secret else "(none)"


@admin.register(SourceTransition)
class SourceTransitionAdmin(ReadOnlyAdmin):
    list_display = ("source", "at", "from_state", "to_state", "reason")
    list_filter = ("to_state",)
    search_fields = ("source__name", "reason")
    list_select_related = ("source__collector",)


@admin.register(Tenant)
class TenantAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "tenant_id",
        "source",
        "region",
        "active",
        "failure_count",
        "last_success_at",
    )
    list_filter = ("active", "region")
    search_fields = ("name", "tenant_id", "source__name")
    list_select_related = ("source__collector",)
    exclude = ("claim_token",)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("source", "stream", "tenant_id", "data_until", "items_total", "updated_at")
    list_filter = ("stream",)
    search_fields = ("source__name", "tenant_id")
    list_select_related = ("source__collector",)


@admin.register(CollectionRun)
class CollectionRunAdmin(ReadOnlyAdmin):
    list_display = (
        "source_name",
        "stream",
        "tenant_id",
        "started_at",
        "ended_at",
        "pages",
        "items",
        "bytes",
        "outcome",
    )
    list_filter = ("outcome", "stream")
    search_fields = ("source_name", "tenant_id", "error")
    date_hierarchy = "started_at"


@admin.register(IngestBucket)
class IngestBucketAdmin(ReadOnlyAdmin):
    list_display = ("source", "stream", "start", "items", "bytes")
    list_filter = ("stream",)
    list_select_related = ("source__collector",)


@admin.register(Field)
class FieldAdmin(ProductOwnedAdmin):
    list_display = ("name", "field_id", "data_type", "enabled", "created_at", "product_link")
    list_filter = ("enabled",)
    search_fields = ("name",)
    readonly_fields = ("name", "field_id", "data_type", "enabled", "created_at", "product_link")

    def product_url(self, obj) -> str:
        return reverse("collector:fields")


@admin.register(DroppedField)
class DroppedFieldAdmin(ReadOnlyAdmin):
    list_display = ("name", "count", "first_seen", "last_seen", "last_resource")
    search_fields = ("name", "last_resource")


@admin.register(HealthEvent)
class HealthEventAdmin(ReadOnlyAdmin):
    list_display = (
        "event_name",
        "severity",
        "resource_name",
        "collector_name",
        "first_seen",
        "last_seen",
        "count",
        "resolved_at",
    )
    list_filter = ("severity", "event_name", "resource_type")
    search_fields = ("resource_name", "collector_name", "event_name")
    date_hierarchy = "last_seen"


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "message_time",
        "source_name",
        "stream",
        "tenant_name",
        "source_category",
        "siem_event_id",
        "index",
    )
    list_filter = ("stream", "index")
    search_fields = ("source_name", "source_category", "vendor_id", "tenant_id")
    date_hierarchy = "message_time"
    show_full_result_count = False


@admin.register(AccessKey)
class AccessKeyAdmin(ProductOwnedAdmin):
    """Keys are created where the plain key can be shown once (the Access keys page or
    ``manage.py create_access_key``) and revoked there; their owner, digest and revocation
    are never editable, so no key can be moved to another user or brought back."""

    list_display = ("access_id", "label", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("access_id", "label", "user__username")
    readonly_fields = (
        "access_id",
        "label",
        "user",
        "key_digest_display",
        "created_at",
        "last_used_at",
        "revoked_at",
        "product_link",
    )
    exclude = ("key_digest",)

    def product_url(self, obj) -> str:
        return reverse("collector:access_keys")

    @admin.display(description="Key")
    def key_digest_display(self, obj):
        return MASK


@admin.register(Destination)
class DestinationAdmin(ProductOwnedAdmin):
    list_display = ("name", "kind", "state", "paused", "siem", "cursor", "delivered_total",
                    "product_link")  # fmt: skip
    list_filter = ("kind", "state", "paused", "siem")
    search_fields = ("name", "route", "description")
    exclude = ("claim_token", "secret_encrypted", "created_by")
    readonly_fields = ("product_link", "secret_display")
    product_url_name = "collector:destination_edit"

    @admin.display(description="Secret")
    def secret_display(self, obj):
        return MASK if obj.has_secret else "(none)"


@admin.register(DeliveryBucket)
class DeliveryBucketAdmin(ReadOnlyAdmin):
    list_display = ("destination", "start", "messages", "bytes")
    list_select_related = ("destination",)
