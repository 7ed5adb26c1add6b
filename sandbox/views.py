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

from sandbox import faults, serializers, services, validation
from sandbox.errors import InvalidApiKey, RateLimited, SandboxError
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
