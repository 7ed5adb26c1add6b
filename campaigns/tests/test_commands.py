"""create_api_key and bootstrap_demo, as a newcomer runs them."""

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from campaigns import devrun
from campaigns.models import Agent, ApiKey, PhoneNumber

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_api_key_prints_only_a_key_that_works(user):
    output = run("create_api_key", user.username, "--name", "ci")

    key = output.strip()
    assert output == key + "\n"
    assert ApiKey.objects.get(user=user).name == "ci"
    assert APIClient().get("/api/v1/campaigns", HTTP_X_API_KEY=key).status_code == 200


def test_create_api_key_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        run("create_api_key", "ghost")


@pytest.fixture(autouse=True)
def _workspace(request, tmp_path, monkeypatch):
    if "bootstrap" in request.node.name:
        request.getfixturevalue("sandbox_live")
    # Whatever DEBUG says, the project's own var/demo.json is never touched.
    monkeypatch.setattr(devrun, "DEMO_FILE", tmp_path / "demo.json")


def test_bootstrap_demo_json_has_what_a_first_request_needs():
    facts = json.loads(run("bootstrap_demo", "--json"))

    assert {"username", "password", "api_key", "agent_id", "phone_number_id"} <= facts.keys()
    user = get_user_model().objects.get(username=facts["username"])
    assert user.is_staff and user.check_password(facts["password"])
    # the workspace's agents and numbers (the sandbox's demo workspace)
    assert Agent.objects.filter(user=user).count() == 3
    assert PhoneNumber.objects.filter(user=user).count() == 4
    assert Agent.objects.filter(user=user, elevenlabs_agent_id=facts["agent_id"]).exists()
    demo_number = PhoneNumber.objects.get(pk=facts["phone_number_id"])
    assert demo_number.user == user and demo_number.supports_outbound
    assert APIClient().get("/api/v1/agents", HTTP_X_API_KEY=facts["api_key"]).status_code == 200


def test_bootstrap_demo_is_idempotent_and_without_a_kept_file_only_the_newest_key_works():
    first = json.loads(run("bootstrap_demo", "--json"))
    second = json.loads(run("bootstrap_demo", "--json"))

    assert get_user_model().objects.count() == 1
    assert Agent.objects.count() == 3 and PhoneNumber.objects.count() == 4
    assert (first["agent_id"], first["phone_number_id"]) == (second["agent_id"], second["phone_number_id"])
    client = APIClient()
    assert client.get("/api/v1/agents", HTTP_X_API_KEY=first["api_key"]).status_code == 401
    assert client.get("/api/v1/agents", HTTP_X_API_KEY=second["api_key"]).status_code == 200


def test_bootstrap_demo_prints_a_ready_to_paste_curl_line():
    output = run("bootstrap_demo")
    key = ApiKey.objects.get(revoked_at__isnull=True)
    assert 'curl -X POST "http://127.0.0.1:8000/api/v1/campaigns"' in output
    assert key.prefix in output
    assert f"recipients_file=@{devrun.ROOT / 'examples' / 'recipients.csv'}" in output


def test_bootstrap_demo_explains_an_unreachable_elevenlabs(settings):
    settings.ELEVENLABS_BASE_URL = "http://127.0.0.1:9/nowhere"
    with pytest.raises(CommandError, match="Could not read the ElevenLabs workspace"):
        run("bootstrap_demo")


def test_sync_elevenlabs_imports_the_workspace(sandbox_live, user):
    output = run("sync_elevenlabs", user.username)
    assert output.strip() == "Synced 3 agents and 4 phone numbers for alice."
    assert set(Agent.objects.filter(user=user).values_list("elevenlabs_agent_id", flat=True)) == {
        "agent_demo_reminders",
        "agent_demo_survey",
        "agent_demo_collections",
    }
    survey = Agent.objects.get(user=user, elevenlabs_agent_id="agent_demo_survey")
    assert survey.override_permissions == {
        "language": True,
        "first_message": True,
        "system_prompt": False,
        "voice_id": False,
    }
    inbound_only = PhoneNumber.objects.filter(user=user, supports_outbound=False)
    assert list(inbound_only.values_list("phone_number", flat=True)) == ["+14155550199"]
