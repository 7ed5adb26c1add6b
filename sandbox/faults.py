"""Injected failures: SANDBOX_FAULTS turns the next few answers of an endpoint into errors.

The setting is read on every request, e.g. `"submit=429:2,get=503:3"`: the next two submits
answer 429 and the next three batch reads answer 503, then those endpoints answer normally
again. Endpoint names are the keys of ENDPOINTS. The counts live in the database
(`SandboxFault`), so every web worker draws from the same ones; `faults_reset()` (or
`manage.py sandbox_faults_reset`) starts them all again from zero.
"""

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F

from sandbox.models import SandboxFault

ENDPOINTS = {
    "submit": "POST /v1/convai/batch-calling/submit",
    "list": "GET /v1/convai/batch-calling/workspace",
    "get": "GET /v1/convai/batch-calling/{batch_id}",
    "delete": "DELETE /v1/convai/batch-calling/{batch_id}",
    "cancel": "POST /v1/convai/batch-calling/{batch_id}/cancel",
    "retry": "POST /v1/convai/batch-calling/{batch_id}/retry",
    "agents": "GET /v1/convai/agents",
    "agent": "GET /v1/convai/agents/{agent_id}",
    "phone_numbers": "GET /v1/convai/phone-numbers",
    "conversation": "GET /v1/convai/conversations/{conversation_id}",
    "conversation_delete": "DELETE /v1/convai/conversations/{conversation_id}",
    "conversation_audio": "GET /v1/convai/conversations/{conversation_id}/audio",
    "campaign_submit": "POST /v1/convai/outbound-campaigns/campaigns/submit",
    "campaign_list": "GET /v1/convai/outbound-campaigns/campaigns",
    "campaign_get": "GET /v1/convai/outbound-campaigns/campaigns/{campaign_id}",
    "campaign_progress": "GET /v1/convai/outbound-campaigns/campaigns/{campaign_id}/progress",
    "campaign_pause": "POST /v1/convai/outbound-campaigns/campaigns/{campaign_id}/pause",
    "campaign_resume": "POST /v1/convai/outbound-campaigns/campaigns/{campaign_id}/resume",
    "campaign_stop": "POST /v1/convai/outbound-campaigns/campaigns/{campaign_id}/stop",
    "campaign_leads": "GET /v1/convai/outbound-campaigns/campaigns/{campaign_id}/leads",
    "campaign_lead": "GET /v1/convai/outbound-campaigns/campaigns/{campaign_id}/leads/{lead_id}",
    "campaign_lead_delete": "DELETE /v1/convai/outbound-campaigns/campaigns/{campaign_id}/leads/{lead_id}",
    "campaign_calls": "GET /v1/convai/outbound-campaigns/campaigns/{campaign_id}/calls",
}

_RULE = re.compile(r"^(?P<endpoint>[a-z_]+)=(?P<status>\d{3}):(?P<count>\d+)$")


@dataclass(frozen=True)
class Fault:
    endpoint: str
    status: int
    count: int

    @property
    def rule(self) -> str:
        return f"{self.endpoint}={self.status}:{self.count}"


def faults_parse(spec: str) -> dict[str, Fault]:
    """`"submit=429:2,get=503:3"` -> one Fault per endpoint; ImproperlyConfigured if malformed."""
    faults: dict[str, Fault] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        match = _RULE.match(item.replace(" ", ""))
        if match is None:
            raise ImproperlyConfigured(f"SANDBOX_FAULTS: {item!r} is not ENDPOINT=STATUS:COUNT")
        endpoint, status, count = match["endpoint"], int(match["status"]), int(match["count"])
        if endpoint not in ENDPOINTS:
            raise ImproperlyConfigured(f"SANDBOX_FAULTS: unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if status != 429 and not 500 <= status <= 599:
            raise ImproperlyConfigured(f"SANDBOX_FAULTS: {item!r}: the status must be 429 or 5xx")
        if endpoint in faults:
            raise ImproperlyConfigured(f"SANDBOX_FAULTS: {endpoint!r} is given twice")
        faults[endpoint] = Fault(endpoint=endpoint, status=status, count=count)
    return faults


def fault_claim(endpoint: str) -> Fault | None:
    """The fault this call to `endpoint` must answer with, if its rule has any left.

    Takes one from the shared count with a conditional UPDATE, so N faults are served N
    times in all, however many workers answer.
    """
    fault = faults_parse(getattr(settings, "SANDBOX_FAULTS", "") or "").get(endpoint)
    if fault is None or fault.count <= 0:
        return None
    SandboxFault.objects.get_or_create(rule=fault.rule)
    claimed = SandboxFault.objects.filter(rule=fault.rule, used__lt=fault.count).update(used=F("used") + 1)
    return fault if claimed else None


def faults_reset() -> int:
    """Forget every count: each rule of SANDBOX_FAULTS fails its next N calls again."""
    deleted, _ = SandboxFault.objects.all().delete()
    return deleted
