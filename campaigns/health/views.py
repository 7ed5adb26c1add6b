"""/healthz and /readyz: plain Django views, no session, no API key, no throttle."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

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
