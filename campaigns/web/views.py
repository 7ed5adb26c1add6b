"""Thin staff pages: check the login, read the form, call a service or selector, render."""

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns import calls, selectors, services
from campaigns.errors import AlreadyCreated, ApplicationError, NotFound
from campaigns.models import Campaign
from campaigns.policy import RECIPIENT_ZONE, Policy, Window, policy_from_campaign

from . import exports, live
from .forms import ApiKeyForm, CampaignFilterForm, CampaignForm, RecipientFilterForm, UploadForm

CAMPAIGNS_PER_PAGE = 25
RECIPIENTS_PER_PAGE = 50
TEMPLATE_CSV = (
    "phone_number,first_name,language,first_message\r\n"
    '+12125550100,Alice,en,"Hi Alice, this is a reminder of your appointment tomorrow at 10am."\r\n'
    '+442079460958,Oliver,en,"Hello Oliver, I am calling about the order you placed last week."\r\n'
)


def staff_required(view):
    """Signed in (else to the sign-in page) and staff (else a page that says so)."""

    @functools.wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            return render(request, "campaigns/not_staff.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


class KnownCountPaginator(Paginator):
    """A paginator told its total, so no COUNT runs over a large table."""

    def __init__(self, object_list, per_page, *, count: int | None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self._known_count = count

    @property
    def count(self):
        if self._known_count is None:
            self._known_count = super().count
        return self._known_count


def _campaign_or_404(request, campaign_id) -> Campaign:
    try:
        return selectors.campaign_get(user=request.user, campaign_id=campaign_id)
    except NotFound as exc:
        raise Http404(exc.error) from None


def _recipient_page(request, campaign: Campaign, counts: selectors.RecipientCounts):
    """The page of recipients the request asks for (filter, search, page), rows ready to show."""
    filter_form = RecipientFilterForm(request.GET)
    filters = filter_form.filters()
    # The counts already hold the total and each status's share: only a search needs a COUNT.
    if filters.get("search"):
        total = None
    elif filters.get("status"):
        total = counts.by_status.get(filters["status"], 0)
    else:
        total = sum(counts.by_status.values())
    # A row needs none of the file's columns: those may be many, and long.
    recipients = selectors.recipient_list(campaign=campaign, **filters).defer("variables", "overrides")
    page = KnownCountPaginator(recipients, RECIPIENTS_PER_PAGE, count=total).get_page(request.GET.get("page"))
    rows = [live.recipient_row(recipient, campaign=campaign) for recipient in page.object_list]
    return filter_form, filters, page, rows


# --- The calling policy in words ------------------------------------------------------------

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DASH = "\N{EN DASH}"  # between the ends of a range of days or hours


def _days_in_words(days: tuple[int, ...]) -> str:
    """Mon to Fri as a range, Mon, Wed and Fri one by one: three days or more in a row read as a range."""
    chosen = set(days)
    if len(chosen) == 7:
        return "every day"
    # Start after a day off, so a run over the weekend reads as one range.
    start = next(day for day in range(7) if day in chosen and (day - 1) % 7 not in chosen)
    runs: list[list[int]] = []
    for offset in range(7):
        day = (start + offset) % 7
        if day not in chosen:
            continue
        if runs and (runs[-1][-1] + 1) % 7 == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(
        f"{_DAY_NAMES[run[0]]}{_DASH}{_DAY_NAMES[run[-1]]}"
        if len(run) > 2
        else ", ".join(_DAY_NAMES[day] for day in run)
        for run in runs
    )


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _duration_in_words(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    return " ".join(parts)


def policy_in_words(policy: Policy) -> str:
    """The calling policy as staff read it, such as "Mon-Fri, 09:00-12:00 and 14:00-20:00, each person's
    own time; up to 3 calls, 30 min apart; at most 4 at once" (ranges with an en dash)."""
    if policy.has_hours:
        windows = [str(window).replace("-", _DASH) for window in policy.windows]
        hours = "any time" if policy.windows == (Window(0, 24 * 60),) else _listed(windows)
        clock = "each person's own time" if policy.timezone == RECIPIENT_ZONE else f"{policy.timezone} time"
        when = f"{_days_in_words(policy.days)}, {hours}, {clock}"
    else:
        when = "any time"
    parts = [when[:1].upper() + when[1:]]
    if policy.max_attempts > 1:
        parts.append(f"up to {policy.max_attempts} calls, {_duration_in_words(policy.retry_delay_minutes)} apart")
    else:
        parts.append("one call each")
    if policy.max_concurrent_calls:
        parts.append(f"at most {policy.max_concurrent_calls:,} at once")
    return "; ".join(parts)


# --- Campaigns -------------------------------------------------------------------------------


@require_safe
@staff_required
def campaign_list(request):
    filter_form = CampaignFilterForm(request.GET)
    filters = filter_form.filters()
    campaigns = selectors.campaign_list_with_rates(selectors.campaign_list_search(user=request.user, **filters))
    page = Paginator(campaigns, CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    for campaign in page.object_list:
        campaign.answer_rate = live.rate_text(campaign.answered, campaign.placed_finished)
        campaign.success_rate = live.rate_text(campaign.successful, campaign.answered)
    context = {"page": page, "filter_form": filter_form, "filtered": any(filters.values())}
    if not page.object_list and not context["filtered"]:
        context["has_agents"] = selectors.agent_list(user=request.user).exists()
        context["has_phone_numbers"] = selectors.phone_number_list(user=request.user).exists()
    return render(request, "campaigns/campaign_list.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def campaign_new(request):
    form = CampaignForm(request.POST or None, request.FILES or None, user=request.user)
    preview = None
    valid = request.method == "POST" and form.is_valid()
    if form.already_created:
        return _already_created(request, form.already_created)
    if valid:
        try:
            if request.POST.get("action") == "create":
                campaign = form.create()
                messages.success(request, _created_message(campaign))
                return redirect("web:campaign_detail", campaign_id=campaign.pk)
            preview = form.preview()
        except AlreadyCreated as exc:
            campaign = selectors.campaign_from_upload(user=request.user, source_upload=exc.source_upload)
            if campaign is None:  # another user's upload key cannot reach here; be safe anyway
                raise Http404(exc.error) from None
            return _already_created(request, campaign)
        except ApplicationError as exc:
            form.add_service_error(exc)
    context = {"form": form, "preview": preview}
    if preview:
        context["policy_text"] = policy_in_words(preview.policy)
        context["one_zone_for_everyone"] = preview.policy.has_hours and preview.policy.timezone != RECIPIENT_ZONE
    return render(request, "campaigns/campaign_form.html", context)


def _already_created(request, campaign: Campaign):
    """A second create from one preview (double click, two tabs): show the campaign it made."""
    messages.info(request, f"Campaign “{campaign.name}” was already created from this preview; here it is.")
    return redirect("web:campaign_detail", campaign_id=campaign.pk)


def _created_message(campaign: Campaign) -> str:
    recipients = f"{campaign.recipients_count:,} recipient{'s' if campaign.recipients_count != 1 else ''}"
    if campaign.send_immediately:
        return f"Campaign “{campaign.name}” created with {recipients}. It is being sent now."
    return f"Campaign “{campaign.name}” created with {recipients}. It will be sent at its scheduled time."


@require_POST
@staff_required
def upload_keep(request):
    """Keep a file a form's page uploads by itself to show its progress; the form then posts its token."""
    form = UploadForm(request.POST, request.FILES, user=request.user)
    if not form.is_valid():
        return JsonResponse({"error": form.error_text()}, status=form.refusal_status)
    kept = form.keep()
    return JsonResponse({"token": kept.token, "name": kept.name, "size": kept.size}, status=201)


@require_safe
@staff_required
def campaign_template(request):
    response = HttpResponse(TEMPLATE_CSV, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="recipients-template.csv"'
    return response


@require_safe
@staff_required
def campaign_detail(request, campaign_id):
    campaign = _campaign_or_404(request, campaign_id)
    counts = selectors.campaign_recipient_counts(campaign=campaign)
    progress = live.progress(campaign, counts)
    filter_form, filters, page, rows = _recipient_page(request, campaign, counts)
    policy = policy_from_campaign(campaign)
    context = {
        "campaign": campaign,
        "progress": progress,
        "policy_text": policy_in_words(policy),
        "one_zone_for_everyone": policy.has_hours and policy.timezone != RECIPIENT_ZONE,
        "next_call_at": selectors.campaign_next_call_at(campaign=campaign),
        # Only ElevenLabs' outbound campaigns call again later, and say why they stopped calling someone.
        "calling_policy": policy.uses_outbound_campaigns,
        "page": page,
        "rows": rows,
        "filter_form": filter_form,
        "filtered": any(filters.values()),
    }
    return render(request, "campaigns/campaign_detail.html", context)


@require_safe
@staff_required
def campaign_progress(request, campaign_id):
    """What the campaign page shows, to refresh it in place: the progress, the outcome counts, the
    batches, the buttons, and the rows of the page of recipients the query string asks for (the
    page's own), in a constant number of queries."""
    campaign = _campaign_or_404(request, campaign_id)
    counts = selectors.campaign_recipient_counts(campaign=campaign)
    data = live.progress(campaign, counts)
    _, _, page, rows = _recipient_page(request, campaign, counts)
    data["recipients"] = {"page": page.number, "rows": rows}
    # The buttons as the page renders them (forms with their CSRF token), for the script to swap in.
    data["actions_html"] = render_to_string(
        "campaigns/_campaign_actions.html", {"campaign": campaign, "progress": data}, request=request
    )
    # The failure and paused notices, which change with the status and the error.
    data["notices_html"] = render_to_string("campaigns/_campaign_notices.html", {"campaign": campaign}, request=request)
    response = JsonResponse(data)
    add_never_cache_headers(response)
    return response


@require_POST
@staff_required
def campaign_cancel(request, campaign_id):
    campaign = _campaign_or_404(request, campaign_id)
    try:
        result = services.campaign_cancel(campaign=campaign)
    except ApplicationError as exc:
        messages.error(request, exc.error)
    else:
        if result.unconfirmed_batches:
            messages.warning(
                request,
                f"Cancel accepted for “{campaign.name}”, but ElevenLabs has not confirmed it yet for "
                f"{result.unconfirmed_batches} batch{'es' if result.unconfirmed_batches != 1 else ''}: calls may "
                "still be placed until it does. It is retried automatically; this page shows when it is done.",
            )
        else:
            messages.success(request, f"Campaign “{campaign.name}” cancelled. No further calls will be placed.")
    return redirect("web:campaign_detail", campaign_id=campaign.pk)


@require_POST
@staff_required
def campaign_pause(request, campaign_id):
    campaign = _campaign_or_404(request, campaign_id)
    try:
        campaign = services.campaign_pause(campaign=campaign)
    except ApplicationError as exc:
        messages.error(request, exc.error)
    else:
        if campaign.pause_confirmed:
            messages.success(request, f"Campaign “{campaign.name}” paused. No call is placed until you resume it.")
        else:
            messages.warning(
                request,
                f"Campaign “{campaign.name}” paused here, but ElevenLabs has not confirmed it for every part "
                "yet: calls may still be placed until it does. It is retried automatically; this page shows "
                "when it is done.",
            )
    return redirect("web:campaign_detail", campaign_id=campaign.pk)


@require_POST
@staff_required
def campaign_resume(request, campaign_id):
    campaign = _campaign_or_404(request, campaign_id)
    try:
        campaign = services.campaign_resume(campaign=campaign)
    except ApplicationError as exc:
        messages.error(request, exc.error)
    else:
        if campaign.error:
            messages.warning(request, campaign.error)
        else:
            messages.success(
                request, f"Campaign “{campaign.name}” resumed: everyone it has not called yet will be called."
            )
    return redirect("web:campaign_detail", campaign_id=campaign.pk)


@require_POST
@staff_required
def campaign_retry(request, campaign_id):
    campaign = _campaign_or_404(request, campaign_id)
    try:
        result = services.campaign_retry(campaign=campaign)
    except ApplicationError as exc:
        messages.error(request, exc.error)
    else:
        calls = f"{result.retried_calls:,} call{'s' if result.retried_calls != 1 else ''}"
        messages.success(request, f"Retrying {calls} that failed or reached voicemail.")
        for failed in result.failed_batches:
            messages.error(
                request,
                f"Batch {failed.part} ({failed.elevenlabs_batch_call_id}) could not be retried: {failed.error}",
            )
    return redirect("web:campaign_detail", campaign_id=campaign.pk)


@require_safe
@staff_required
def campaign_export(request, campaign_id):
    campaign = _campaign_or_404(request, campaign_id)
    header, rows = selectors.recipient_export(campaign=campaign)
    response = StreamingHttpResponse(exports.csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
    add_never_cache_headers(response)
    return response


# --- One recipient's call ----------------------------------------------------------------------


@require_safe
@staff_required
def call_detail(request, campaign_id, recipient_id):
    try:
        view = calls.call_view(
            user=request.user, campaign_id=campaign_id, recipient_id=recipient_id, attempt=request.GET.get("attempt")
        )
    except NotFound as exc:
        raise Http404(exc.error) from None
    return render(request, "campaigns/call_detail.html", {"view": view, "campaign": view.campaign})


@require_safe
@staff_required
def call_recording(request, campaign_id, recipient_id, call_id):
    """The call's recording, streamed from ElevenLabs as it arrives: the browser never sees the key."""
    try:
        call = calls.call_get(user=request.user, campaign_id=campaign_id, recipient_id=recipient_id, call_id=call_id)
    except NotFound as exc:
        raise Http404(exc.error) from None
    try:
        audio = calls.call_recording(call=call)
    except ApplicationError as exc:  # NoRecording (404) or UpstreamError (502)
        context = {"message": exc.error, "status_code": exc.status_code, "call_url": _call_url(call)}
        return render(request, "campaigns/call_recording_error.html", context, status=exc.status_code)
    response = StreamingHttpResponse(audio.chunks, content_type=audio.content_type)
    if audio.content_length is not None:
        response["Content-Length"] = str(audio.content_length)
    response["Content-Disposition"] = (
        f'inline; filename="campaign-{call.campaign_id}-recipient-{call.recipient_id}-call-{call.attempt}.mp3"'
    )
    add_never_cache_headers(response)  # a person's voice: kept in no cache
    return response


def _call_url(call) -> str:
    url = reverse("web:call_detail", args=[call.campaign_id, call.recipient_id])
    return f"{url}?attempt={call.attempt}"


# --- Agents and phone numbers ---------------------------------------------------------------


@require_safe
@staff_required
def agent_list(request):
    context = {
        "agents": selectors.agent_list(user=request.user),
        "phone_numbers": selectors.phone_number_list(user=request.user),
    }
    return render(request, "campaigns/agent_list.html", context)


@require_POST
@staff_required
def agent_sync(request):
    try:
        result = services.elevenlabs_sync(user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.error)
    else:
        messages.success(
            request,
            f"Synced {result.agents} agent{'s' if result.agents != 1 else ''} and {result.phone_numbers} "
            f"phone number{'s' if result.phone_numbers != 1 else ''} from ElevenLabs.",
        )
    return redirect("web:agent_list")


# --- API keys --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_required
def api_key_list(request):
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        # Shown in this response only: the raw key is stored nowhere, not even in the session.
        created = services.api_key_create(user=request.user, name=form.cleaned_data["name"])
        messages.success(request, "API key created. Copy it now: it will not be shown again.")
        form = ApiKeyForm()
    context = {"form": form, "created": created, "api_keys": selectors.api_key_list(user=request.user)}
    response = render(request, "campaigns/api_key_list.html", context)
    if created:
        add_never_cache_headers(response)
    return response


@require_POST
@staff_required
def api_key_revoke(request, key_id):
    api_key = get_object_or_404(selectors.api_key_list(user=request.user), pk=key_id)
    if api_key.revoked_at is not None:
        messages.info(request, f"The key {api_key.prefix}… was already revoked.")
    else:
        services.api_key_revoke(api_key=api_key)
        messages.success(request, f"Key {api_key.prefix}… revoked: requests using it are now refused.")
    return redirect("web:api_key_list")
