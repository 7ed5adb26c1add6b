"""Django admin over every model.

Changelists load related rows up front (no query per row). Actions are thin: each calls a
service for every selected row and tells the user what it did and what it skipped, and why.
"""

import datetime as dt

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from campaigns import services, tracking
from campaigns.errors import ApplicationError
from campaigns.models import Agent, ApiKey, Call, Campaign, CampaignBatch, PhoneNumber, Profile, Recipient, WebhookEvent


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _skipped(noun: str, skipped: list[tuple[object, str]]) -> str:
    # One line per row: the reasons are sentences of their own.
    reasons = format_html_join(mark_safe("<br>"), "“{}”: {}", skipped)
    return format_html("Skipped {}:<br>{}", _plural(len(skipped), noun), reasons)


class ElevenLabsSyncAdminMixin:
    """The action that imports agents and phone numbers for the owners of the selected rows."""

    actions = ["sync_from_elevenlabs"]

    @admin.action(description="Sync agents and phone numbers from ElevenLabs")
    def sync_from_elevenlabs(self, request, queryset):
        owners = get_user_model().objects.filter(pk__in=queryset.values("user_id")).order_by("pk")
        for owner in owners:
            try:
                result = services.elevenlabs_sync(user=owner)
            except ApplicationError as exc:
                self.message_user(request, f"Could not sync {owner}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"Synced {_plural(result.agents, 'agent')} and {_plural(result.phone_numbers, 'phone number')} "
                f"for {owner}.",
                messages.SUCCESS,
            )


@admin.register(Agent)
class AgentAdmin(ElevenLabsSyncAdminMixin, admin.ModelAdmin):
    list_display = ["name", "elevenlabs_agent_id", "user", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["name", "elevenlabs_agent_id"]
    raw_id_fields = ["user"]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(ElevenLabsSyncAdminMixin, admin.ModelAdmin):
    list_display = ["phone_number", "label", "provider", "supports_outbound", "elevenlabs_phone_number_id", "user"]
    list_filter = ["supports_outbound"]
    list_select_related = ["user"]
    search_fields = ["phone_number", "label", "elevenlabs_phone_number_id"]
    raw_id_fields = ["user"]
    # As ElevenLabs reports it: a sync would overwrite any edit made here.
    readonly_fields = ["supports_outbound"]


class CampaignTypeFilter(admin.SimpleListFilter):
    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [("immediate", "Immediate"), ("scheduled", "Scheduled")]

    def queryset(self, request, queryset):
        if self.value() in ("immediate", "scheduled"):
            return queryset.filter(send_immediately=self.value() == "immediate")
        return queryset


class CampaignBatchInline(admin.TabularInline):
    """The campaign's ElevenLabs batches (a handful per campaign), as the workers left them."""

    model = CampaignBatch
    fields = [
        "part",
        "size",
        "elevenlabs_batch_call_id",
        "status",
        "calls_dispatched",
        "calls_finished",
        "retry_count",
        "submit_attempts",
        "submitted_at",
        "next_attempt_at",
        "polled_at",
        "poll_failures",
        "cancel_confirmed_at",
        "settled_at",
        "last_error",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "status",
        "user",
        "agent",
        "phone_number",
        "recipients_link",
        "schedule",
        "elevenlabs_batch_call_id",
        "created_at",
    ]
    list_filter = ["status", CampaignTypeFilter, "created_at", "scheduled_at"]
    list_select_related = ["user", "agent", "phone_number"]
    search_fields = ["name", "elevenlabs_batch_call_id"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "agent", "phone_number"]
    # Status and progress are written by the services and workers; the actions move them.
    readonly_fields = [
        "recipients_link",
        "status",
        "elevenlabs_batch_call_id",
        "dispatch_claimed_at",
        "cancel_requested_at",
        "calls_dispatched",
        "calls_finished",
        "error",
        "recipients_count",
        "duplicates_merged",
        "invalid_rows_skipped",
        "import_errors",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "user", "agent", "phone_number", "recipients_link"]}),
        ("Schedule", {"fields": ["send_immediately", "scheduled_at", "timezone"]}),
        (
            "Progress",
            {
                "fields": [
                    "status",
                    "elevenlabs_batch_call_id",
                    "dispatch_claimed_at",
                    "cancel_requested_at",
                    "calls_dispatched",
                    "calls_finished",
                    "error",
                ]
            },
        ),
        ("Import", {"fields": ["recipients_count", "duplicates_merged", "invalid_rows_skipped", "import_errors"]}),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    inlines = [CampaignBatchInline]
    actions = ["dispatch_now", "cancel", "sync_status", "retry_failed_calls"]

    def has_add_permission(self, request):
        # A campaign is created with its recipients by services.campaign_create (API or staff form).
        return False

    @admin.display(description="Recipients", ordering="recipients_count")
    def recipients_link(self, campaign):
        # A link to the filtered recipient list: an inline of thousands of rows would not load.
        url = reverse("admin:campaigns_recipient_changelist") + f"?campaign__id__exact={campaign.pk}"
        return format_html('<a href="{}">{}</a>', url, f"{campaign.recipients_count:,}")

    @admin.display(description="Schedule", ordering="scheduled_at")
    def schedule(self, campaign):
        return "Immediately" if campaign.send_immediately else campaign.scheduled_at

    def _report(self, request, done: str | None, skipped: list[tuple[Campaign, str]]) -> None:
        if done:
            self.message_user(request, done, messages.SUCCESS)
        if skipped:
            self.message_user(request, _skipped("campaign", skipped), messages.WARNING)

    def _each(self, queryset, service) -> tuple[list, list[tuple[Campaign, str]]]:
        """Run a service on each campaign; collect what it returned and why any were skipped."""
        results, skipped = [], []
        for campaign in queryset:
            try:
                results.append(service(campaign=campaign))
            except ApplicationError as exc:
                skipped.append((campaign, str(exc)))
        return results, skipped

    @admin.action(description="Dispatch selected campaigns now")
    def dispatch_now(self, request, queryset):
        queued, skipped = self._each(queryset, services.campaign_dispatch_now)
        done = f"Queued {_plural(len(queued), 'campaign')} for dispatch now." if queued else None
        self._report(request, done, skipped)

    @admin.action(description="Cancel selected campaigns")
    def cancel(self, request, queryset):
        results, skipped = self._each(queryset, services.campaign_cancel)
        confirmed = [result for result in results if not result.unconfirmed_batches]
        waiting = [result for result in results if result.unconfirmed_batches]
        done = f"Cancelled {_plural(len(confirmed), 'campaign')}." if confirmed else None
        self._report(request, done, skipped)
        if waiting:
            names = ", ".join(f"“{result.campaign}”" for result in waiting)
            self.message_user(
                request,
                f"Cancel accepted but not yet confirmed by ElevenLabs for {names}: calls may still be placed "
                "until it is. The worker keeps trying; each campaign's error says why.",
                messages.WARNING,
            )

    @admin.action(description="Sync status from ElevenLabs")
    def sync_status(self, request, queryset):
        sent = set(
            CampaignBatch.objects.filter(campaign__in=queryset, elevenlabs_batch_call_id__isnull=False)
            .values_list("campaign_id", flat=True)
            .distinct()
        )
        synced, skipped = [], []
        for campaign in queryset:
            if campaign.pk not in sent:
                skipped.append((campaign, "it has not been sent to ElevenLabs yet."))
                continue
            tracking.campaign_poll(campaign_id=campaign.pk)
            failing = campaign.batches.filter(poll_failures__gt=0).values_list("last_error", flat=True).first()
            if failing:
                skipped.append((campaign, f"ElevenLabs could not report its status: {failing}"))
            else:
                synced.append(campaign.pk)
        done = None
        if synced:
            polled = Campaign.objects.filter(pk__in=synced).order_by("name", "pk")
            statuses = ", ".join(f"“{campaign}” is {campaign.get_status_display().lower()}" for campaign in polled)
            done = f"Synced {_plural(len(synced), 'campaign')} with ElevenLabs: {statuses}."
        self._report(request, done, skipped)

    @admin.action(description="Retry failed calls of selected campaigns")
    def retry_failed_calls(self, request, queryset):
        results, skipped = self._each(queryset, services.campaign_retry)
        done = None
        if results:
            calls = sum(result.retried_calls for result in results)
            done = f"Retrying {_plural(calls, 'call')} in {_plural(len(results), 'campaign')}."
        self._report(request, done, skipped)


class CampaignFilter(admin.SimpleListFilter):
    """Filter by campaign id from a link; listing every campaign as a choice would not scale."""

    title = "campaign"
    parameter_name = "campaign__id__exact"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, f"Campaign {value}")] if value else []

    def queryset(self, request, queryset):
        return queryset.filter(campaign_id=self.value()) if self.value() else queryset


class CappedCountPaginator(Paginator):
    """Counts at most `count_cap` rows, so a page of a huge table never waits for a full COUNT(*).

    The count runs over a LIMITed subquery: exact below the cap, `count_cap` above it (the
    pages past the cap are then out of reach; filter or search to get there).
    """

    count_cap = 10_001

    @cached_property
    def count(self):
        return self.object_list[: self.count_cap].count()


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ["phone_number", "campaign", "status", "call_successful", "failure_reason", "line"]
    list_filter = ["status", CampaignFilter]
    list_select_related = ["campaign"]
    search_fields = ["=phone_number"]
    raw_id_fields = ["campaign"]
    show_full_result_count = False
    paginator = CappedCountPaginator


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
        keys = list(queryset)
        active = [api_key for api_key in keys if api_key.is_active]
        already = [(api_key, "it was already revoked.") for api_key in keys if not api_key.is_active]
        for api_key in active:
            services.api_key_revoke(api_key=api_key)
        if active:
            self.message_user(request, f"Revoked {_plural(len(active), 'API key')}.", messages.SUCCESS)
        if already:
            self.message_user(request, _skipped("API key", already), messages.WARNING)


admin.site.register(Profile)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the workers and the webhook receiver: looked at, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = ["conversation_id", "recipient", "attempt", "status", "call_result", "failure_reason", "updated_at"]
    list_filter = ["status", "call_result", CampaignFilter]
    list_select_related = ["recipient"]
    search_fields = ["=conversation_id"]
    show_full_result_count = False
    paginator = CappedCountPaginator


class WaitingFilter(admin.SimpleListFilter):
    """Events still unmatched after a day: a call ElevenLabs reported that we cannot place."""

    title = "waiting"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("day", "Pending for more than a day")]

    def queryset(self, request, queryset):
        if self.value() == "day":
            return queryset.filter(
                status=WebhookEvent.Status.PENDING, received_at__lt=timezone.now() - dt.timedelta(days=1)
            )
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "event_type", "status", "conversation_id", "attempts", "note"]
    list_filter = ["status", WaitingFilter, "event_type"]
    search_fields = ["=conversation_id"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    paginator = CappedCountPaginator
