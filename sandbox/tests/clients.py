"""Test doubles: the sandbox's clock and an HTTP client that speaks to it like ElevenLabs' SDK."""

from django.test import Client

API_KEY = "sandbox-test-key"
BASE = "/sandbox/elevenlabs"


class Clock:
    """Stands in for the `time` module in `sandbox.services`; tests move it by hand."""

    def __init__(self, start: float):
        self.now = start

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class ElevenLabsClient:
    """Talks to the sandbox as an ElevenLabs API client would."""

    def __init__(self, api_key: str = API_KEY):
        self.client = Client()
        self.headers = {"xi-api-key": api_key}

    def get(self, path: str, params: dict | None = None):
        return self.client.get(BASE + path, params or {}, headers=self.headers)

    def post(self, path: str, payload=None, **kwargs):
        if payload is None:
            return self.client.post(BASE + path, headers=self.headers, **kwargs)
        return self.client.post(BASE + path, payload, content_type="application/json", headers=self.headers)

    def post_raw(self, path: str, body: str | bytes, content_type: str = "application/json"):
        return self.client.post(BASE + path, body, content_type=content_type, headers=self.headers)

    def delete(self, path: str):
        return self.client.delete(BASE + path, headers=self.headers)

    def submit(self, numbers=("+14155550123",), **fields):
        payload = {
            "call_name": "Reminders",
            "agent_id": "agent_demo_reminders",
            "agent_phone_number_id": "phnum_demo_main",
            "recipients": [{"phone_number": number} for number in numbers],
        }
        payload.update(fields)
        response = self.post("/v1/convai/batch-calling/submit", payload)
        assert response.status_code == 200, response.content
        return response.json()

    def batch(self, batch_id: str) -> dict:
        response = self.get(f"/v1/convai/batch-calling/{batch_id}")
        assert response.status_code == 200, response.content
        return response.json()


CAMPAIGNS = "/v1/convai/outbound-campaigns/campaigns"


def campaign_body(numbers=("+14155550120",), **fields) -> dict:
    """An outbound campaign submit body calling `numbers` from the demo line; `fields` replace or add."""
    body = {
        "call_name": "Spring reminders",
        "agent_id": "agent_demo_reminders",
        "channel_config": {"channel": "phone", "agent_phone_number_id": "phnum_demo_main"},
        "recipients": [{"phone_number": number} for number in numbers],
    }
    body.update(fields)
    return body


class CampaignClient(ElevenLabsClient):
    """The outbound campaign endpoints, each answer checked for its status code."""

    def submit_campaign(self, numbers=("+14155550120",), status: int = 201, **fields) -> dict:
        response = self.post(f"{CAMPAIGNS}/submit", campaign_body(numbers, **fields))
        assert response.status_code == status, response.content
        return response.json()

    def read(self, path: str, params: dict | None = None) -> dict:
        response = self.get(f"{CAMPAIGNS}/{path}", params)
        assert response.status_code == 200, response.content
        return response.json()

    def campaign(self, campaign_id: str) -> dict:
        return self.read(campaign_id)

    def progress(self, campaign_id: str) -> dict:
        return self.read(f"{campaign_id}/progress")

    def leads(self, campaign_id: str, **params) -> dict:
        return self.read(f"{campaign_id}/leads", params)

    def calls(self, campaign_id: str, **params) -> dict:
        return self.read(f"{campaign_id}/calls", params)

    def lead(self, campaign_id: str, lead_id: str) -> dict:
        return self.read(f"{campaign_id}/leads/{lead_id}")

    def action(self, campaign_id: str, action: str):
        return self.post(f"{CAMPAIGNS}/{campaign_id}/{action}")
