"""/healthz, /readyz and /metrics: plain Django views, no session, no API key, no throttle."""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from campaigns.api.envelope import error_body
from campaigns.health import checks


def _envelope(data: dict, *, message: str) -> dict:
    return {"status": {"code": 200, "message": message}, "data": data}


@csrf_exempt
@never_cache
@require_GET
def healthz(request):
    """The process answers: nothing else is asked, not even the database."""
    return JsonResponse(_envelope({"alive": True}, message="Alive"))


@csrf_exempt
@never_cache
@require_GET
def readyz(request):
    results = checks.readiness()
    report = {result.name: result.as_dict() for result in results}
    failed = [result for result in results if not result.ok]
    if not failed:
        return JsonResponse(_envelope({"checks": report}, message="Ready"))
    names = ", ".join(result.name for result in failed)
    body = error_body(
        code=503,
        message="Service Unavailable",
        error=f"Not ready: {names}.",
        errors=[f"{result.name}: {result.error}" for result in failed],
        details={"checks": report},
    )
    return JsonResponse(body, status=503)


@csrf_exempt
@never_cache
@require_GET
def metrics(request):
    # Without a token there is no endpoint at all (404): the counts describe the business and
    # are never served to whoever finds the URL.
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
