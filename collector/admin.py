"""Django admin for every model: secrets masked, collected data and health events read-only."""

from django import forms
from django.contrib import admin

from collector.crypto import MASK
from collector.models import (
    AccessKey,
    Checkpoint,
    CollectionRun,
    Collector,
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


@admin.register(Collector)
class CollectorAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "time_zone", "created_at")
    search_fields = ("name", "description", "category")
    list_filter = ("time_zone",)


class SourceAdminForm(forms.ModelForm):
    """The secret is write-only here: blank keeps the stored value."""

    new_client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the current secret.",
    )

    class Meta:
        model = Source
        exclude = ("secret_encrypted",)  # noqa: DJ006 - every column but the secret

    def save(self, commit=True):
        source = super().save(commit=False)
        if self.cleaned_data.get("new_client_secret"):
            source.set_secret(self.cleaned_data["new_client_secret"])
        if commit:
            source.save()
        return source


class TenantInline(admin.TabularInline):
    model = Tenant
    extra = 0
    fields = ("tenant_id", "name", "region", "active", "failure_count", "last_success_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceAdminForm
    list_display = (
        "name",
        "collector",
        "kind",
        "state",
        "paused",
        "polling_interval",
        "last_success_at",
    )
    list_filter = ("state", "paused", "kind", "forward_to_siem", "collector")
    search_fields = ("name", "category", "description", "collector__name")
    list_select_related = ("collector",)
    readonly_fields = (
        "secret_display",
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
    exclude = ("claim_token",)
    inlines = [TenantInline]

    @admin.display(description="Client secret")
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
class FieldAdmin(admin.ModelAdmin):
    list_display = ("name", "field_id", "data_type", "enabled", "created_at")
    list_filter = ("enabled",)
    search_fields = ("name",)
    readonly_fields = ("field_id", "data_type", "created_at")


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
class AccessKeyAdmin(admin.ModelAdmin):
    list_display = ("access_id", "label", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("access_id", "label", "user__username")
    readonly_fields = ("access_id", "key_digest_display", "created_at", "last_used_at")
    exclude = ("key_digest",)

    def has_add_permission(self, request):
        # Keys are created where the plain key can be shown once: the Access keys page or
        # `manage.py create_access_key`.
        return False

    @admin.display(description="Key")
    def key_digest_display(self, obj):
        return MASK
