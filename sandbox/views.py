"""HTTP interface of the ElevenLabs sandbox: thin views over `sandbox.services`.

Plain Django views answering as ElevenLabs' FastAPI server does: its status codes, its
`{"detail": ...}` error bodies, its 404 and 405 for unknown paths and methods. Every
endpoint also honours SANDBOX_LATENCY_SECONDS and SANDBOX_FAULTS (see `sandbox.faults`),
read on each request.
"""

import functools
import hmac
import time
from http import HTTPStatus

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import faults, outbound, serializers, services, validation
from sandbox.errors import ConversationNotFound, InvalidApiKey, RateLimited, SandboxError
from sandbox.validation import QueryParams

NOT_FOUND = {"detail": "Not Found"}


def _json(payload, status: int = 200) -> JsonResponse:
    return JsonResponse(payload, status=status, safe=False)


def _error_response(exc: SandboxError) -> JsonResponse:
    response = _json(exc.body, status=exc.status_code)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def _fault_response(fault: faults.Fault) -> HttpResponse:
    """A 429 in ElevenLabs' shape, or a bare 5xx as a failing gateway or server sends it."""
    if fault.status == 429:
        return _error_response(RateLimited())
    return HttpResponse(HTTPStatus(fault.status).phrase, status=fault.status, content_type="text/plain; charset=utf-8")


def _api_key_valid(given: str) -> bool:
    """Only the deployment's own key opens the sandbox: every batch it holds was submitted with it."""
    expected = services.sandbox_api_key()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def sandbox_endpoint(**endpoints: str):
    """Sandbox switch, allowed methods, latency, `xi-api-key`, injected faults and error bodies.

    `endpoints` maps each allowed method to the endpoint's name in SANDBOX_FAULTS, e.g.
    `sandbox_endpoint(GET="get", DELETE="delete")`.
    """

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not services.sandbox_enabled():
                return _json(NOT_FOUND, status=404)
            latency = float(getattr(settings, "SANDBOX_LATENCY_SECONDS", 0) or 0)
            if latency > 0:
                time.sleep(latency)
            if request.method not in endpoints:
                response = _json({"detail": "Method Not Allowed"}, status=405)
                response["Allow"] = ", ".join(endpoints)
                return response
            try:
                if not _api_key_valid(request.headers.get("xi-api-key", "")):
                    raise InvalidApiKey()
                fault = faults.fault_claim(endpoints[request.method])
                if fault is not None:
                    return _fault_response(fault)
                return view(request, *args, **kwargs)
            except SandboxError as exc:
                return _error_response(exc)

        return wrapper

    return decorate


@csrf_exempt
def not_found(request, *args, **kwargs):
    return _json(NOT_FOUND, status=404)


@sandbox_endpoint(POST="submit")
def batch_submit(request):
    body = validation.submit_body_parse(raw=request.body, content_type=request.headers.get("content-type"))
    batch = services.batch_submit(payload=validation.submit_body_validate(body))
    # Optional latency after the batch is stored: lets tests lose a worker while ElevenLabs
    # has accepted a batch but not yet answered.
    delay = getattr(settings, "SANDBOX_SUBMIT_DELAY_SECONDS", 0)
    if delay:
        time.sleep(delay)
    # The answer shows the batch as it stands now: an immediate one is already calling.
    return _json(serializers.batch_to_json(services.batch_advance(batch)))


@sandbox_endpoint(GET="list")
def batch_list(request):
    query = QueryParams(request.GET)
    limit = query.integer("limit", default=100, ge=1)
    query.done()
    page = services.batch_list(limit=limit, last_doc=query.string("last_doc"), agent_id=query.string("agent_id"))
    return _json(
        serializers.batch_page_to_json(batch_calls=page.batch_calls, next_doc=page.next_doc, has_more=page.has_more)
    )


@sandbox_endpoint(GET="get", DELETE="delete")
def batch_detail(request, batch_id: str):
    if request.method == "DELETE":
        services.batch_delete(batch_id=batch_id)
        response = HttpResponse(status=200)
        del response["Content-Type"]  # no body, so no media type, as ElevenLabs answers
        return response
    batch = services.batch_get(batch_id=batch_id)
    return _json(serializers.batch_detailed_to_json(batch, services.batch_recipients(batch=batch)))


@sandbox_endpoint(POST="cancel")
def batch_cancel(request, batch_id: str):
    return _json(serializers.batch_to_json(services.batch_cancel(batch_id=batch_id)))


@sandbox_endpoint(POST="retry")
def batch_retry(request, batch_id: str):
    return _json(serializers.batch_to_json(services.batch_retry(batch_id=batch_id)))


@sandbox_endpoint(GET="agents")
def agent_list(request):
    query = QueryParams(request.GET)
    page_size = query.integer("page_size", default=30, ge=1, le=100)
    archived = query.boolean("archived")
    sort_by = query.enum("sort_by", ("name", "created_at", "call_count_7d"))
    sort_direction = query.enum("sort_direction", ("asc", "desc"))
    query.done()
    page = services.agent_list(
        page_size=page_size,
        cursor=query.string("cursor"),
        search=query.string("search"),
        archived=archived,
        sort_by=sort_by,
        sort_direction=sort_direction,
    )
    return _json(
        serializers.agent_page_to_json(agents=page.agents, next_cursor=page.next_cursor, has_more=page.has_more)
    )


@sandbox_endpoint(GET="agent")
def agent_detail(request, agent_id: str):
    return _json(serializers.agent_to_json(services.agent_get(agent_id=agent_id)))


@sandbox_endpoint(GET="phone_numbers")
def phone_number_list(request):
    query = QueryParams(request.GET)
    provider = query.enum("provider", ("twilio", "sip_trunk", "exotel"))
    query.done()
    numbers = services.phone_number_list(provider=provider, agent_id=query.string("agent_id"))
    return _json(serializers.phone_numbers_to_json(numbers))


@sandbox_endpoint(GET="conversation")
def conversation_detail(request, conversation_id: str):
    query = QueryParams(request.GET)
    query.enum("format", ("json", "opentelemetry"))
    query.done()
    conversation = services.conversation_get(conversation_id=conversation_id)
    return _json(serializers.conversation_to_json(conversation))


@sandbox_endpoint(GET="conversation_audio")
def conversation_audio(request, conversation_id: str):
    """The call's recording as ElevenLabs sends it: the MP3 bytes, `audio/mpeg`."""
    conversation = services.conversation_get(conversation_id=conversation_id)
    return HttpResponse(services.conversation_audio(conversation=conversation), content_type="audio/mpeg")


# --- Outbound campaigns -------------------------------------------------------------------

CAMPAIGN_STATUSES = ("active", "paused", "stopping", "stopped", "completed", "failed", "attention")
TERMINAL_DISPOSITIONS = (
    "campaign_ended",
    "removed",
    "do_not_call",
    "completed",
    "cancelled",
    "suppressed",
    "attempt_ceiling_reached",
    "callback_ceiling_reached",
    "redirect_ceiling_reached",
    "permission_not_granted",
    "permission_declined",
    "permission_request_blocked",
    "permission_expired",
    "callback_time_invalid",
    "redirect_number_invalid",
    "couldnt_process",
)
CALL_STATUSES = ("queued", "submitted", "completed", "cancelled", "attention")
CALL_RESULTS = ("answered", "voicemail", "busy", "no_answer", "failed")
MESSAGE_STAGES = ("queued", "sent", "delivered", "read", "replied", "failed")


def _campaign_json(campaign) -> dict:
    return serializers.campaign_to_json(campaign, outbound.lead_counts([campaign])[campaign.pk])


@sandbox_endpoint(POST="campaign_submit")
def campaign_submit(request):
    body = validation.submit_body_parse(raw=request.body, content_type=request.headers.get("content-type"))
    submitted = outbound.campaign_submit(payload=validation.campaign_body_validate(body))
    counts = outbound.lead_counts([submitted.campaign])[submitted.campaign.pk]
    # 201 for a new campaign; a repeat answers 200 with the campaign it created.
    return _json(serializers.campaign_submit_to_json(submitted, counts), status=201 if submitted.created else 200)


@sandbox_endpoint(GET="campaign_list")
def campaign_list(request):
    query = QueryParams(request.GET)
    page_size = query.integer("page_size", default=30, ge=1, le=100)
    statuses = query.enum_list("status", CAMPAIGN_STATUSES)
    channel = query.enum("channel", ("phone", "whatsapp"))
    mode = query.enum("mode", ("voice", "message"))
    query.done()
    page = outbound.campaign_list(
        page_size=page_size,
        cursor=query.string("cursor"),
        statuses=statuses,
        agent_id=query.string("agent_id"),
        channel=channel,
        mode=mode,
        search=query.string("search"),
    )
    return _json(serializers.campaign_page_to_json(page, outbound.lead_counts(page.campaigns)))


@sandbox_endpoint(GET="campaign_get")
def campaign_detail(request, campaign_id: str):
    return _json(_campaign_json(outbound.campaign_get(campaign_id=campaign_id)))


@sandbox_endpoint(GET="campaign_progress")
def campaign_progress(request, campaign_id: str):
    return _json(serializers.campaign_progress_to_json(outbound.campaign_progress(campaign_id=campaign_id)))


@sandbox_endpoint(POST="campaign_pause")
def campaign_pause(request, campaign_id: str):
    return _json(_campaign_json(outbound.campaign_pause(campaign_id=campaign_id)))


@sandbox_endpoint(POST="campaign_resume")
def campaign_resume(request, campaign_id: str):
    return _json(_campaign_json(outbound.campaign_resume(campaign_id=campaign_id)))


@sandbox_endpoint(POST="campaign_stop")
def campaign_stop(request, campaign_id: str):
    campaign = outbound.campaign_stop(campaign_id=campaign_id)
    # 202 while calls already placed are finishing.
    return _json(_campaign_json(campaign), status=202 if campaign.status == "stopping" else 200)


@sandbox_endpoint(GET="campaign_leads")
def campaign_leads(request, campaign_id: str):
    query = QueryParams(request.GET)
    page_size = query.integer("page_size", default=30, ge=1, le=100)
    status = query.enum("status", ("in_progress", "finished"))
    dispositions = query.enum_list("disposition", TERMINAL_DISPOSITIONS)
    query.done()
    page = outbound.lead_list(
        campaign_id=campaign_id,
        page_size=page_size,
        cursor=query.string("cursor"),
        search=query.string("search"),
        status=status,
        dispositions=dispositions,
    )
    return _json(serializers.lead_page_to_json(page))


@sandbox_endpoint(GET="campaign_lead", DELETE="campaign_lead_delete")
def campaign_lead(request, campaign_id: str, lead_id: str):
    if request.method == "DELETE":
        suppressed = outbound.lead_suppress(campaign_id=campaign_id, lead_id=lead_id)
        # 202 when a call already placed may still go through.
        return _json(serializers.suppressed_to_json(suppressed), status=202 if suppressed.has_calls_in_flight else 200)
    return _json(serializers.lead_to_json(outbound.lead_get(campaign_id=campaign_id, lead_id=lead_id)))


@sandbox_endpoint(GET="campaign_calls")
def campaign_calls(request, campaign_id: str):
    query = QueryParams(request.GET)
    page_size = query.integer("page_size", default=30, ge=1, le=100)
    status = query.enum("status", CALL_STATUSES)
    call_results = query.enum_list("call_result", CALL_RESULTS)
    stage = query.enum("stage", MESSAGE_STAGES)
    query.done()
    page = outbound.call_list(
        campaign_id=campaign_id,
        page_size=page_size,
        cursor=query.string("cursor"),
        lead_id=query.string("lead_id"),
        status=status,
        call_results=call_results,
        stage=stage,
    )
    now = services._clock(None)
    conversation_ids = {call.pk: outbound.call_conversation_id(call, now) for call in page.calls}
    return _json(serializers.call_page_to_json(page, conversation_ids))


@sandbox_endpoint(GET="conversation", DELETE="conversation_delete")
def conversation(request, conversation_id: str):
    """A conversation, or its deletion (200 with no body, as the batch-call delete answers)."""
    if request.method == "DELETE":
        services.conversation_delete(conversation_id=conversation_id)
        response = HttpResponse(status=200)
        del response["Content-Type"]
        return response
    if services.conversation_deleted(conversation_id=conversation_id):
        raise ConversationNotFound(conversation_id)
    # The read itself, without running the checks above a second time.
    return conversation_detail.__wrapped__(request, conversation_id)
