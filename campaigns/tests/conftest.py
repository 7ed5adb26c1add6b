import io
import queue

import pytest
import responses
from rest_framework.test import APIClient

from campaigns import elevenlabs, services
from voiceable.celery import app as celery_app

from .factories import AgentFactory, PhoneNumberFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    return UserFactory(username="mallory")


@pytest.fixture
def raw_api_key(user):
    return services.api_key_create(user=user, name="tests").raw_key


@pytest.fixture
def staff(client, user):
    """The test client, signed in as a staff user."""
    client.force_login(user)
    return client


@pytest.fixture
def api(raw_api_key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_api_key)
    return client


@pytest.fixture
def agent(user):
    return AgentFactory(user=user, elevenlabs_agent_id="agent_abc123", name="Reminder agent")


@pytest.fixture
def phone_number(user):
    return PhoneNumberFactory(user=user, phone_number="+14155550100")


def csv_file(text: str, name: str = "recipients.csv", encoding: str = "utf-8") -> io.BytesIO:
    upload = io.BytesIO(text.encode(encoding))
    upload.name = name
    return upload


@pytest.fixture
def campaign_form(agent, phone_number):
    """A valid create-campaign form; tests change what they are about."""

    def build(**changes):
        form = {
            "name": "Q1 Product Launch Campaign",
            "phone_number_id": str(phone_number.pk),
            "agent_id": agent.elevenlabs_agent_id,
            "recipients_file": csv_file("phone_number\n+12125550100\n+14155550123\n+442079460958\n"),
            "send_immediately": "true",
        }
        form.update(changes)
        return {key: value for key, value in form.items() if value is not None}

    return build


@pytest.fixture
def sandbox_live(live_server, settings):
    """ElevenLabs played by the sandbox app, over real HTTP on the live test server."""
    settings.ELEVENLABS_SANDBOX = True
    settings.ELEVENLABS_API_KEY = settings.ELEVENLABS_SANDBOX_API_KEY
    settings.ELEVENLABS_BASE_URL = f"{live_server.url}/sandbox/elevenlabs"
    settings.SANDBOX_WEBHOOK_URL = ""
    yield live_server
    # Drop kept-alive connections before the live server stops, or its thread complains.
    elevenlabs.client_from_settings().session.close()


# Where tests that play ElevenLabs with the responses library point the client.
BASE = "https://api.elevenlabs.test"


@pytest.fixture
def http():
    """ElevenLabs, played by the responses library: register what it answers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def broker_queue():
    """Celery's default queue on the test broker, emptied first."""
    with celery_app.connection_for_read() as connection:
        simple = connection.SimpleQueue("celery")
        while True:
            try:
                simple.get(block=False).ack()
            except queue.Empty:
                break
        yield simple
        simple.close()


@pytest.fixture(scope="module")
def built():
    """build(case): each hostile file of hostile_files.HOSTILE, built once per test module."""
    cache = {}

    def build(case):
        if case.name not in cache:
            cache[case.name] = case.build()
        return cache[case.name]

    return build
