import pytest

from .clients import ElevenLabsClient

pytestmark = [pytest.mark.django_db]

PATHS = [
    ("get", "/v1/convai/batch-calling/workspace"),
    ("get", "/v1/convai/batch-calling/btcal_0123"),
    ("post", "/v1/convai/batch-calling/submit"),
    ("post", "/v1/convai/batch-calling/btcal_0123/cancel"),
    ("post", "/v1/convai/batch-calling/btcal_0123/retry"),
    ("delete", "/v1/convai/batch-calling/btcal_0123"),
    ("get", "/v1/convai/agents"),
    ("get", "/v1/convai/agents/agent_demo_reminders"),
    ("get", "/v1/convai/phone-numbers"),
    ("get", "/v1/convai/conversations/conv_0123"),
]


@pytest.mark.parametrize("method,path", PATHS)
def test_a_wrong_api_key_is_a_401_invalid_api_key(db, method, path):
    response = getattr(ElevenLabsClient(api_key="wrong"), method)(path)

    assert response.status_code == 401
    assert response.json() == {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}


def test_a_missing_api_key_is_a_401(db):
    response = ElevenLabsClient().client.get("/sandbox/elevenlabs/v1/convai/agents")

    assert response.status_code == 401
    assert response.json()["detail"]["status"] == "invalid_api_key"


def test_the_key_comes_from_settings_with_sandbox_as_default(db, settings):
    del settings.ELEVENLABS_SANDBOX_API_KEY

    assert ElevenLabsClient(api_key="sandbox").get("/v1/convai/agents").status_code == 200


@pytest.mark.parametrize("method,path", [*PATHS, ("get", "/v1/convai/conversations")])
def test_every_sandbox_url_is_not_found_when_the_sandbox_is_off(db, settings, method, path):
    settings.ELEVENLABS_SANDBOX = False

    response = getattr(ElevenLabsClient(), method)(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_the_sandbox_is_off_unless_settings_turn_it_on(db, settings):
    del settings.ELEVENLABS_SANDBOX

    assert ElevenLabsClient().get("/v1/convai/agents").status_code == 404


def test_an_unknown_path_is_a_json_404(api):
    response = api.get("/v1/convai/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_a_wrong_method_is_a_405(api):
    response = api.get("/v1/convai/batch-calling/submit")

    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response["Allow"] == "POST"
