"""HTTP interface of the ElevenLabs sandbox: thin views over `sandbox.services`.

Plain Django views answering as ElevenLabs' FastAPI server does: its status codes, its
`{"detail": ...}` error bodies, its 404 and 405 for unknown paths and methods.
"""

import functools
import hmac
import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox import serializers, services, validation
from sandbox.errors import InvalidApiKey, SandboxError
from sandbox.validation import QueryParams

NOT_FOUND = {"detail": "Not Found"}


def _json(payload, status: int = 200) -> JsonResponse:
    return JsonResponse(payload, status=status, safe=False)


def sandbox_endpoint(*methods: str):
    """Sandbox switch, allowed methods, `xi-api-key` and error bodies, in FastAPI's order."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not services.sandbox_enabled():
                return _json(NOT_FOUND, status=404)
            if request.method not in methods:
                response = _json({"detail": "Method Not Allowed"}, status=405)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                api_key = request.headers.get("xi-api-key", "")
                if not hmac.compare_digest(api_key.encode(), services.sandbox_api_key().encode()):
                    raise InvalidApiKey()
                return view(request, *args, **kwargs)
            except SandboxError as exc:
                return _json(exc.body, status=exc.status_code)

        return wrapper

    return decorate


@csrf_exempt
def not_found(request, *args, **kwargs):
    return _json(NOT_FOUND, status=404)


@sandbox_endpoint("POST")
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


@sandbox_endpoint("GET")
def batch_list(request):
    query = QueryParams(request.GET)
    limit = query.integer("limit", default=100, ge=1)
    query.done()
    page = services.batch_list(limit=limit, last_doc=query.string("last_doc"), agent_id=query.string("agent_id"))
    return _json(
        serializers.batch_page_to_json(batch_calls=page.batch_calls, next_doc=page.next_doc, has_more=page.has_more)
    )


@sandbox_endpoint("GET", "DELETE")
def batch_detail(request, batch_id: str):
    if request.method == "DELETE":
        services.batch_delete(batch_id=batch_id)
        response = HttpResponse(status=200)
        del response["Content-Type"]  # no body, so no media type, as ElevenLabs answers
        return response
    batch = services.batch_get(batch_id=batch_id)
    return _json(serializers.batch_detailed_to_json(batch, services.batch_recipients(batch=batch)))


@sandbox_endpoint("POST")
def batch_cancel(request, batch_id: str):
    return _json(serializers.batch_to_json(services.batch_cancel(batch_id=batch_id)))


@sandbox_endpoint("POST")
def batch_retry(request, batch_id: str):
    return _json(serializers.batch_to_json(services.batch_retry(batch_id=batch_id)))


@sandbox_endpoint("GET")
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


@sandbox_endpoint("GET")
def agent_detail(request, agent_id: str):
    return _json(serializers.agent_to_json(services.agent_get(agent_id=agent_id)))


@sandbox_endpoint("GET")
def phone_number_list(request):
    query = QueryParams(request.GET)
    provider = query.enum("provider", ("twilio", "sip_trunk", "exotel"))
    query.done()
    numbers = services.phone_number_list(provider=provider, agent_id=query.string("agent_id"))
    return _json(serializers.phone_numbers_to_json(numbers))


@sandbox_endpoint("GET")
def conversation_detail(request, conversation_id: str):
    query = QueryParams(request.GET)
    query.enum("format", ("json", "opentelemetry"))
    query.done()
    conversation = services.conversation_get(conversation_id=conversation_id)
    return _json(serializers.conversation_to_json(conversation))
