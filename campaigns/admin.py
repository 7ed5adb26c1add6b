"""Django admin over every model. Changelists load related rows up front (no query per row)."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from campaigns import services
from campaigns.models import Agent, ApiKey, Campaign, PhoneNumber, Profile, Recipient


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "elevenlabs_agent_id", "user", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["name", "elevenlabs_agent_id"]
    raw_id_fields = ["user"]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "label", "provider", "elevenlabs_phone_number_id", "user"]
    list_select_related = ["user"]
    search_fields = ["phone_number", "label", "elevenlabs_phone_number_id"]
    raw_id_fields = ["user"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "status",
        "user",
        "agent",
        "phone_number",
        "recipients_link",
        "scheduled_at",
        "elevenlabs_batch_call_id",
        "created_at",
    ]
    list_filter = ["status", "send_immediately", "created_at"]
    list_select_related = ["user", "agent", "phone_number"]
    search_fields = ["name", "elevenlabs_batch_call_id"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "agent", "phone_number"]
    readonly_fields = ["recipients_link", "created_at", "updated_at", "import_errors"]

    @admin.display(description="Recipients", ordering="recipients_count")
    def recipients_link(self, campaign):
        # A link to the filtered recipient list: an inline of thousands of rows would not load.
        url = reverse("admin:campaigns_recipient_changelist") + f"?campaign__id__exact={campaign.pk}"
        return format_html('<a href="{}">{}</a>', url, f"{campaign.recipients_count:,}")


class CampaignFilter(admin.SimpleListFilter):
    """Filter by campaign id from a link; listing every campaign as a choice would not scale."""

    title = "campaign"
    parameter_name = "campaign__id__exact"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"Campaign {value}")] if value else []

    def queryset(self, request, queryset):
        return queryset.filter(campaign_id=self.value()) if self.value() else queryset


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "campaign", "status", "call_successful", "failure_reason", "line"]
    list_filter = ["status", CampaignFilter]
    list_select_related = ["campaign"]
    search_fields = ["=phone_number"]
    raw_id_fields = ["campaign"]
    show_full_result_count = False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name"]
        return ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = services.api_key_create(user=obj.user, name=obj.name)
        obj.pk = created.api_key.pk
        obj.refresh_from_db()
        messages.warning(
            request,
            format_html("New API key (copy it now, it is not shown again): <code>{}</code>", created.raw_key),
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key)
        self.message_user(request, "Revoked the selected keys.")


admin.site.register(Profile)
