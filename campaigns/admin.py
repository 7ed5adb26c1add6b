"""Django admin over every model.

Superusers see and act on every row; any other staff user only on their own account's, as on
the staff pages (AccountScopedAdmin). Changelists load related rows up front (no query per
row). Actions are thin: each calls a service for every selected row and tells the user what it
did and what it skipped, and why.

History is kept: a campaign that was sent keeps its setup (only its name changes), one that
placed calls is never deleted, and recipients and calls are only looked at.
"""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets, get_fields_from_path, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as AuthGroupAdmin
from django.contrib.auth.admin import UserAdmin as AuthUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from campaigns import lifecycle, selectors, services, suppressions, tracking
from campaigns.errors import ApplicationError, Conflict
from campaigns.models import (
    Agent,
    ApiKey,
    Call,
    Campaign,
    CampaignBatch,
    Erasure,
    PhoneNumber,
    Profile,
    Recipient,
    Suppression,
    WebhookEvent,
)

User = get_user_model()

# The path from a row to the user whose account it belongs to. WebhookEvent is not here: its
# rows belong to no account, so only superusers see them.
ACCOUNT_PATHS = {
    User: "pk",
    Profile: "user",
    Agent: "user",
    PhoneNumber: "user",
    ApiKey: "user",
    Campaign: "user",
    CampaignBatch: "campaign__user",
    Recipient: "campaign__user",
    Call: "campaign__user",
    Suppression: "user",
    Erasure: "user",
}


def account_rows(queryset, user):
    """The rows of `queryset` that `user` may see: every one for a superuser, else their account's."""
    if user.is_superuser:
        return queryset
    path = ACCOUNT_PATHS.get(queryset.model)
    return queryset.none() if path is None else queryset.filter(**{path: user.pk})


def _refused_value(model, key: str, value: str) -> bool:
    """Whether a filter value would fail in the query rather than be refused by Django.

    PostgreSQL refuses a NUL character in text. Django bounds a date-hierarchy year by the next
    one, and moves an instant to UTC: at year 1 or 9999 either leaves the calendar.
    """
    if "\x00" in value:
        return True
    path, _, lookup = key.rpartition(LOOKUP_SEP)
    if not path:
        path, lookup = key, "exact"
    try:
        field = model._meta.get_field(path)
    except FieldDoesNotExist:
        return False
    if not isinstance(field, models.DateField):
        return False
    try:
        if lookup == "year":
            year = int(value)
        elif lookup in ("exact", "gte", "lt"):
            year = field.to_python(value).year
        else:
            return False
    except (ValueError, ValidationError):
        return False  # Django refuses it itself
    return not dt.MINYEAR < year < dt.MAXYEAR


class AccountChangeList(ChangeList):
    """Django's change list, also refusing the filter values it would otherwise fail on.

    Like any value Django cannot parse, they answer a redirect to the unfiltered list (`?e=1`).
    """

    def get_filters(self, request):
        for key, values in self.get_filters_params().items():
            if any(_refused_value(self.model, key, value) for value in values):
                raise IncorrectLookupParameters(f"Cannot filter by {key}={values[-1]!r}.")
        return super().get_filters(request)


class OwnRecordRawIdWidget(widgets.ForeignKeyRawIdWidget):
    """The raw-id input, naming the record whose id it holds only if the user may see it."""

    def __init__(self, rel, admin_site, *, queryset, **kwargs):
        super().__init__(rel, admin_site, **kwargs)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        # A posted id of another account's record is refused by the form, which then shows the
        # input again: without this check, next to that record's name.
        key = self.rel.get_related_field().name
        try:
            visible = self.queryset.filter(**{key: value}).exists()
        except (ValueError, ValidationError):
            visible = False
        return super().label_and_url_for_value(value) if visible else ("", "")


class AccountScopedAdmin:
    """Superusers see and act on every row; any other staff user only on their own account's.

    Every read the admin makes goes through get_queryset: lists, search, filters, date
    hierarchy, counts, actions, raw-id popups, autocomplete, change pages and the campaign
    page's batches, so scoping it scopes them all. Another account's row answers 404, as a
    missing one does. The forms offer only the user's own records, and refuse a posted id of
    anyone else's. The list's query parameters are checked too (lookup_allowed, AccountChangeList).
    """

    superusers_only = False  # for rows that belong to no account

    def get_queryset(self, request):
        return account_rows(super().get_queryset(request), request.user)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such record.")
        return obj

    def _open_to(self, request) -> bool:
        return request.user.is_superuser or not self.superusers_only

    def has_module_permission(self, request):
        return self._open_to(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._open_to(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return self._open_to(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._open_to(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._open_to(request) and super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            related = db_field.remote_field.model
            kwargs["queryset"] = account_rows(related._default_manager.all(), request.user)
            if related is User:
                # The owner is the user: one choice, not a popup over a list of users they cannot see.
                kwargs.update(widget=forms.Select, empty_label=None)
            elif db_field.name in self.raw_id_fields:
                kwargs["widget"] = OwnRecordRawIdWidget(
                    db_field.remote_field, self.admin_site, queryset=kwargs["queryset"], using=kwargs.get("using")
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(self, request, queryset, search_term):
        if "\x00" in search_term:
            # No stored text holds one, and PostgreSQL refuses it. (The list's search form drops
            # it already; the autocomplete view passes its term through.)
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def get_changelist(self, request, **kwargs):
        return AccountChangeList

    def lookup_allowed(self, lookup, value, request):
        # Only the parameters this list's own filters and date hierarchy write: any other lookup
        # typed into the address (a regex, a JSON containment, a year 0, a column the list does
        # not show such as key_hash) is refused with a 400 before it reaches the database.
        return lookup in self._filter_parameters(request) and super().lookup_allowed(lookup, value, request)

    def _filter_parameters(self, request) -> set[str]:
        """The query parameters this list's filters and date hierarchy write."""
        names = set()
        for list_filter in self.get_list_filter(request):
            if isinstance(list_filter, type) and issubclass(list_filter, admin.SimpleListFilter):
                names.add(list_filter.parameter_name)
                continue
            path = list_filter[0] if isinstance(list_filter, (list, tuple)) else list_filter
            field = get_fields_from_path(self.model, path)[-1]
            # What Django's field filters write: a value (bare for the all-values filter) or its
            # absence; a range for a date; the related row's key for a relation.
            names.update([path, f"{path}{LOOKUP_SEP}exact", f"{path}{LOOKUP_SEP}isnull"])
            if isinstance(field, models.DateField):
                names.update([f"{path}{LOOKUP_SEP}gte", f"{path}{LOOKUP_SEP}lt"])
            if field.is_relation:
                names.add(LOOKUP_SEP.join([path, field.target_field.name, "exact"]))
        if self.date_hierarchy:
            names.update(f"{self.date_hierarchy}{LOOKUP_SEP}{part}" for part in ("year", "month", "day"))
        return names


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _skipped(noun: str, skipped: list[tuple[object, str]]) -> str:
    # One line per row: the reasons are sentences of their own.
    reasons = format_html_join(mark_safe("<br>"), "“{}”: {}", skipped)
    return format_html("Skipped {}:<br>{}", _plural(len(skipped), noun), reasons)


def _names(rows) -> str:
    return ", ".join(f"“{row}”" for row in rows)


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
class AgentAdmin(AccountScopedAdmin, ElevenLabsSyncAdminMixin, admin.ModelAdmin):
    list_display = ["name", "elevenlabs_agent_id", "user", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["name", "elevenlabs_agent_id"]
    raw_id_fields = ["user"]


@admin.register(PhoneNumber)
class PhoneNumberAdmin(AccountScopedAdmin, ElevenLabsSyncAdminMixin, admin.ModelAdmin):
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


class CampaignBatchInline(AccountScopedAdmin, admin.TabularInline):
    """The campaign's ElevenLabs batches (a handful per campaign), as the workers left them."""

    model = CampaignBatch
    fields = [
        "part",
        "timezone",
        "size",
        "elevenlabs_batch_call_id",
        "elevenlabs_campaign_id",
        "concurrency_limit",
        "status",
        "next_call_at",
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
    # Django's tabular inline, with its two empty header cells named for screen readers.
    template = "admin/campaigns/campaign/batches_inline.html"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(AccountScopedAdmin, admin.ModelAdmin):
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
        "suppressed_count",
        "time_zones",
        "calling_hours",
        "calling_days",
        "calling_timezone",
        "max_attempts",
        "retry_delay_minutes",
        "max_concurrent_calls",
        "paused_at",
        "pause_confirmed",
        "created_at",
        "updated_at",
        "personal_data",
    ]
    fieldsets = [
        (None, {"fields": ["name", "user", "agent", "phone_number", "recipients_link"]}),
        ("Schedule", {"fields": ["send_immediately", "scheduled_at", "timezone"]}),
        # Read only: the parts at ElevenLabs were made from them (campaigns.policy checks them at create).
        (
            "Calling policy",
            {
                "fields": [
                    "calling_hours",
                    "calling_days",
                    "calling_timezone",
                    "max_attempts",
                    "retry_delay_minutes",
                    "max_concurrent_calls",
                    "time_zones",
                ]
            },
        ),
        (
            "Progress",
            {
                "fields": [
                    "status",
                    "elevenlabs_batch_call_id",
                    "dispatch_claimed_at",
                    "cancel_requested_at",
                    "paused_at",
                    "pause_confirmed",
                    "calls_dispatched",
                    "calls_finished",
                    "error",
                ]
            },
        ),
        (
            "Import",
            {
                "fields": [
                    "recipients_count",
                    "duplicates_merged",
                    "invalid_rows_skipped",
                    "suppressed_count",
                    "import_errors",
                ]
            },
        ),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
        ("Personal data", {"fields": ["personal_data"]}),
    ]
    inlines = [CampaignBatchInline]
    actions = ["dispatch_now", "cancel", "pause", "resume", "sync_status", "retry_failed_calls", "delete_selected"]

    def has_add_permission(self, request):
        # A campaign is created with its recipients by services.campaign_create (API or staff form).
        return False

    # --- History: a sent campaign keeps its setup, one that placed calls is kept -------------

    def _sent(self, campaign: Campaign) -> bool:
        # Asked several times per page: once per campaign object is enough.
        if not hasattr(campaign, "_sent"):
            campaign._sent = selectors.campaign_sent(campaign=campaign)
        return campaign._sent

    def get_readonly_fields(self, request, obj=None):
        if obj is None or not self._sent(obj):
            return self.readonly_fields
        # Its agent, number, owner and schedule are what was sent: only the name changes.
        editable = services.CAMPAIGN_FIELDS_EDITABLE_WHEN_SENT
        fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        return [*self.readonly_fields, *(name for name in fields if name not in (*self.readonly_fields, *editable))]

    def save_model(self, request, obj, form, change):
        # Only what the form changed, through the service: a worker may have claimed the
        # campaign since the form was loaded, and what it wrote must not be overwritten.
        refused = services.campaign_update(
            campaign=obj, changes={name: form.cleaned_data[name] for name in form.changed_data}
        )
        if refused:
            self.message_user(
                request,
                f"“{obj}” was sent meanwhile, so only its name can change: {', '.join(refused)} not saved.",
                messages.WARNING,
            )

    def has_delete_permission(self, request, obj=None):
        if obj is not None and selectors.campaign_delete_refusal(campaign=obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        campaign = self.get_object(request, unquote(object_id))
        if super().has_delete_permission(request, campaign):
            reason = selectors.campaign_delete_refusal(campaign=campaign)
            if reason:
                self.message_user(request, f"“{campaign}” cannot be deleted: {reason}", messages.ERROR)
                return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        return super().delete_view(request, object_id, extra_context)

    @admin.action(description="Delete selected campaigns", permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's deletion, with its confirmation page, for the campaigns that may be deleted;
        the others are named with the reason."""
        refused = []
        for campaign in queryset:
            if reason := selectors.campaign_delete_refusal(campaign=campaign):
                refused.append((campaign, reason))
        if refused:
            self.message_user(request, _skipped("campaign", refused), messages.WARNING)
        deletable = queryset.exclude(pk__in=[campaign.pk for campaign, _ in refused])
        return django_delete_selected(self, request, deletable) if deletable.exists() else None

    def get_deleted_objects(self, objs, request):
        """What deleting the campaigns takes with them, counted rather than listed: a list of every
        recipient would not load, and recipients are deleted only with their campaign."""
        campaigns = list(objs)
        to_delete = []
        for campaign in campaigns:
            url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
            to_delete += [format_html('Campaign: <a href="{}">{}</a>', url, campaign)]
            to_delete += [[f"{_plural(campaign.recipients_count, 'recipient')} and its batches"]]
        model_count = {
            Campaign._meta.verbose_name_plural: len(campaigns),
            Recipient._meta.verbose_name_plural: sum(campaign.recipients_count for campaign in campaigns),
        }
        perms_needed = set() if super().has_delete_permission(request) else {Campaign._meta.verbose_name}
        return to_delete, model_count, perms_needed, []

    def delete_model(self, request, obj):
        try:
            services.campaign_delete(campaign=obj)
        except Conflict as exc:  # it placed a call or was sent since the page was loaded
            raise PermissionDenied(exc.error) from None

    def delete_queryset(self, request, queryset):
        skipped = []
        for campaign in queryset:
            try:
                services.campaign_delete(campaign=campaign)
            except Conflict as exc:
                skipped.append((campaign, exc.error))
        if skipped:
            self.message_user(request, _skipped("campaign", skipped), messages.WARNING)

    @admin.display(description="Retention")
    def personal_data(self, obj: Campaign) -> str:
        return lifecycle.campaign_retention_state(campaign=obj)

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

    @admin.action(description="Pause selected campaigns")
    def pause(self, request, queryset):
        already = [
            (campaign, "it is paused already.") for campaign in queryset if campaign.status == Campaign.Status.PAUSED
        ]
        results, skipped = self._each(queryset.exclude(status=Campaign.Status.PAUSED), services.campaign_pause)
        held = [campaign for campaign in results if campaign.pause_confirmed]
        waiting = [campaign for campaign in results if not campaign.pause_confirmed]
        done = f"Paused {_plural(len(held), 'campaign')}: {_names(held)}." if held else None
        self._report(request, done, already + skipped)
        if waiting:
            self.message_user(
                request,
                f"Paused but not yet confirmed by ElevenLabs for {_names(waiting)}: calls may still be placed until "
                "it is. The worker keeps trying; each campaign's error says why.",
                messages.WARNING,
            )

    @admin.action(description="Resume selected paused campaigns")
    def resume(self, request, queryset):
        results, skipped = self._each(queryset, services.campaign_resume)
        resumed = [campaign for campaign in results if not campaign.error]
        done = f"Resumed {_plural(len(resumed), 'campaign')}: {_names(resumed)}." if resumed else None
        self._report(request, done, skipped)
        for campaign in results:
            if campaign.error:
                self.message_user(request, f"“{campaign}”: {campaign.error}", messages.WARNING)

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
            if not tracking.campaign_poll(campaign_id=campaign.pk):
                skipped.append((campaign, "a worker is polling it right now; its page shows the result shortly."))
                continue
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
        value = self.campaign_id()
        return [(value, f"Campaign {value}")] if value else []

    def queryset(self, request, queryset):
        value = self.campaign_id()
        return queryset.filter(campaign_id=value) if value else queryset

    def campaign_id(self) -> str | None:
        """The id asked for; anything but one is refused like any value Django cannot parse."""
        value = self.value()
        if not value:
            return None
        # A bigint: SQLite cannot even compare a larger one.
        if not (value.isascii() and value.isdigit() and int(value) < 2**63):
            raise IncorrectLookupParameters(f"{value!r} is not a campaign id.")
        return value


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
class RecipientAdmin(AccountScopedAdmin, admin.ModelAdmin):
    list_display = ["phone_number", "campaign", "status", "call_successful", "failure_reason", "line"]
    list_filter = ["status", CampaignFilter]
    list_select_related = ["campaign"]
    search_fields = ["=phone_number"]
    raw_id_fields = ["campaign"]
    show_full_result_count = False
    paginator = CappedCountPaginator

    # Who was called and what they said: looked at, never edited. They are deleted only with
    # their campaign, when it may be (CampaignAdmin.get_deleted_objects does not ask these).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(AccountScopedAdmin, admin.ModelAdmin):
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


@admin.register(Profile)
class ProfileAdmin(AccountScopedAdmin, admin.ModelAdmin):
    """A staff user sees and edits their own preferences only."""

    list_display = ["user", "timezone"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AccountScopedAdmin, AuthUserAdmin):
    """Superusers only.

    Whoever may change a user may make it a superuser: shown only their own record, a staff
    user could still grant themselves everything. Their password is changed from the admin's
    "Change password" link, which needs no access to users.
    """

    superusers_only = True


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(AccountScopedAdmin, AuthGroupAdmin):
    """Superusers only: groups hold permissions, and belong to no one account."""

    superusers_only = True


class ReadOnlyAdmin(AccountScopedAdmin, admin.ModelAdmin):
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

    def has_delete_permission(self, request, obj=None):
        # A call is history; deleting calls one by one would also open the way to deleting
        # their campaign.
        return False


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
    superusers_only = True  # verified events, matched or not, are not any one account's records
    list_display = ["received_at", "event_type", "status", "conversation_id", "attempts", "note"]
    list_filter = ["status", WaitingFilter, "event_type"]
    search_fields = ["=conversation_id"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    paginator = CappedCountPaginator


class SuppressionAdminForm(forms.ModelForm):
    # Room for the number as typed (spaces, brackets); what is stored is its E.164 form.
    phone_number = forms.CharField(max_length=64, help_text="Stored in E.164, read as recipients files read it.")

    class Meta:
        model = Suppression
        fields = ["user", "phone_number", "reason"]

    def clean_phone_number(self):
        # Stored exactly as a recipients file's number is read, so that it matches in every file.
        try:
            return suppressions.phone_number_normalise(self.cleaned_data["phone_number"])
        except ApplicationError as exc:
            raise ValidationError(exc.error) from None


@admin.register(Suppression)
class SuppressionAdmin(AccountScopedAdmin, admin.ModelAdmin):
    list_display = ["number", "reason", "source", "campaign", "user", "created_at"]
    list_filter = ["source"]
    list_select_related = ["user", "campaign"]
    search_fields = ["phone_number"]
    raw_id_fields = ["user", "campaign"]
    form = SuppressionAdminForm
    show_full_result_count = False
    paginator = CappedCountPaginator

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "phone_number", "reason"]
        return ["user", "number", "reason", "source", "campaign", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # Another number is another entry: only the reason is edited in place.
        return [] if obj is None else ["user", "number", "source", "campaign", "created_at"]

    @admin.display(description="Phone number", ordering="phone_number")
    def number(self, obj: Suppression) -> str:
        # An erased number's entry keeps only its hash (campaigns.lifecycle).
        return str(obj)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # Through the service, so that adding here has the same effects as anywhere else.
        suppression, _ = suppressions.suppression_add(
            user=obj.user, phone_number=obj.phone_number, reason=obj.reason, source=Suppression.Source.ADMIN
        )
        obj.pk = suppression.pk
        obj.refresh_from_db()


class ErasureAdminForm(forms.ModelForm):
    # Taken, never stored: the erasure keeps only its hash.
    phone_number = forms.CharField(max_length=64, help_text="Read as recipients files read it; it is not kept.")

    class Meta:
        model = Erasure
        fields = ["user"]

    def clean_phone_number(self):
        try:
            return suppressions.phone_number_normalise(self.cleaned_data["phone_number"])
        except ApplicationError as exc:
            raise ValidationError(exc.error) from None


@admin.register(Erasure)
class ErasureAdmin(AccountScopedAdmin, admin.ModelAdmin):
    """Erase a person: the add form takes an account and a number and runs the same service as
    POST /api/v1/erasures; the saved record is its report, read only."""

    list_display = [
        "created_at",
        "user",
        "recipients_erased",
        "campaigns_touched",
        "conversations_deleted",
        "calls_not_stopped",
        "do_not_call_kept",
        "requested_by",
    ]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    form = ErasureAdminForm
    show_full_result_count = False
    paginator = CappedCountPaginator
    report_fields = [
        "user",
        "created_at",
        "requested_by",
        "recipients_erased",
        "campaigns_touched",
        "calls_erased",
        "calls_prevented",
        "calls_not_stopped",
        "conversations_deleted",
        "conversations_not_deleted",
        "do_not_call_kept",
        "notes",
    ]

    def get_fields(self, request, obj=None):
        return ["user", "phone_number"] if obj is None else self.report_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.report_fields

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # The record of an erasure is what shows it was done.
        return False

    def save_model(self, request, obj, form, change):
        erasure = lifecycle.person_erase(
            user=form.cleaned_data["user"],
            phone_number=form.cleaned_data["phone_number"],
            requested_by=f"staff user {request.user.get_username()}",
        )
        obj.pk = erasure.pk
        obj.refresh_from_db()
        self.message_user(request, f"Erased: {lifecycle.erasure_summary(erasure)}.", messages.SUCCESS)
        for note in erasure.notes:
            self.message_user(request, note, messages.WARNING)

    def response_add(self, request, obj, post_url_continue=None):
        # The report, not the list: it is what the person erasing came for.
        return redirect(reverse("admin:campaigns_erasure_change", args=[obj.pk]))
