"""The staff page of event webhooks: add an endpoint (its secret shown once), health, test, delete."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.errors import ApplicationError
from campaigns.web.views import staff_required

from . import services

DELIVERIES_SHOWN = 20


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="Where events are POSTed. https only; addresses inside private networks are refused.",
        widget=forms.URLInput(
            attrs={"placeholder": "https://example.com/hooks/voiceable", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    events = forms.MultipleChoiceField(
        label="Events",
        required=False,
        choices=[(name, name) for name in services.EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )


@require_http_methods(["GET", "POST"])
@staff_required
def webhook_list(request):
    form = WebhookEndpointForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.endpoint_create(
                user=request.user, url=form.cleaned_data["url"], events=form.cleaned_data["events"]
            )
        except ApplicationError as exc:
            field = getattr(exc, "field", None)
            form.add_error(field if field in form.fields else None, exc.error)
        else:
            messages.success(request, "Endpoint added. Copy its signing secret now: it will not be shown again.")
            form = WebhookEndpointForm()
    context = {
        "form": form,
        "created": created,
        "endpoints": services.endpoint_list(user=request.user),
        "deliveries": services.deliveries_recent(user=request.user, limit=DELIVERIES_SHOWN),
        "event_types": services.EVENT_TYPES,
    }
    response = render(request, "campaigns/webhook_list.html", context)
    if created:
        # The secret is in this page only: no cache may keep it.
        add_never_cache_headers(response)
    return response


@require_POST
@staff_required
def webhook_delete(request, endpoint_id):
    try:
        endpoint = services.endpoint_delete(user=request.user, endpoint_id=endpoint_id)
    except ApplicationError as exc:
        messages.error(request, exc.error)
        return redirect("web:webhook_list")
    messages.success(request, f"Endpoint {endpoint.url} deleted: no more events are sent to it.")
    return redirect("web:webhook_list")


@require_POST
@staff_required
def webhook_test(request, endpoint_id):
    try:
        endpoint = services.endpoint_get(user=request.user, endpoint_id=endpoint_id)
    except ApplicationError as exc:
        messages.error(request, exc.error)
        return redirect("web:webhook_list")
    if endpoint.disabled:
        messages.error(request, f"{endpoint.url} is disabled; delete it and add it again to receive events.")
        return redirect("web:webhook_list")
    services.endpoint_send_test(endpoint=endpoint)
    messages.success(request, f"Test event queued for {endpoint.url}. Its delivery shows below.")
    return redirect("web:webhook_list")
