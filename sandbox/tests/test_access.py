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


@pytest.mark.parametrize("given", ["sandbox", ""])
def test_without_a_key_in_settings_no_request_is_accepted(db, settings, given):
    del settings.ELEVENLABS_SANDBOX_API_KEY

    assert ElevenLabsClient(api_key=given).get("/v1/convai/agents").status_code == 401


def test_an_empty_key_in_settings_does_not_let_an_empty_key_in(db, settings):
    settings.ELEVENLABS_SANDBOX_API_KEY = ""

    assert ElevenLabsClient(api_key="").get("/v1/convai/agents").status_code == 401


@pytest.mark.parametrize("method,path", PATHS)
def test_the_old_constant_key_opens_nothing_once_the_deployment_has_its_own(db, settings, method, path):
    settings.ELEVENLABS_SANDBOX_API_KEY = "k" * 40

    response = getattr(ElevenLabsClient(api_key="sandbox"), method)(path)

    assert response.status_code == 401


def test_without_the_key_a_batch_can_be_neither_seen_nor_changed(api, clock):
    # Given a batch submitted with the deployment's key, one call already placed
    batch = api.submit(numbers=["+14155550120", "+14155550121"])
    clock.advance(2.1)
    conversation_id = api.batch(batch["id"])["recipients"][0]["conversation_id"]
    before = api.batch(batch["id"])

    # When someone without the key tries every batch endpoint
    stranger = ElevenLabsClient(api_key="sandbox")
    answers = [
        stranger.get("/v1/convai/batch-calling/workspace"),
        stranger.get(f"/v1/convai/batch-calling/{batch['id']}"),
        stranger.get(f"/v1/convai/conversations/{conversation_id}"),
        stranger.post(f"/v1/convai/batch-calling/{batch['id']}/cancel"),
        stranger.post(f"/v1/convai/batch-calling/{batch['id']}/retry"),
        stranger.delete(f"/v1/convai/batch-calling/{batch['id']}"),
    ]

    # Then each is refused, and the batch is as it was
    assert [response.status_code for response in answers] == [401] * 6
    assert all(b"btcal" not in response.content and b"+1415" not in response.content for response in answers)
    assert api.batch(batch["id"]) == before
    listed = api.get("/v1/convai/batch-calling/workspace").json()["batch_calls"]
    assert [item["id"] for item in listed] == [batch["id"]]


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
