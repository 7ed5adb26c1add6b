import time

import pytest

from sandbox import services

from .clients import API_KEY, Clock, ElevenLabsClient


@pytest.fixture(autouse=True)
def sandbox_settings(settings):
    settings.ELEVENLABS_SANDBOX = True
    settings.ELEVENLABS_SANDBOX_API_KEY = API_KEY
    settings.SANDBOX_CALL_SPACING_SECONDS = 0.5
    settings.SANDBOX_STEP_SECONDS = 2.0
    settings.SANDBOX_WEBHOOK_URL = ""
    settings.ELEVENLABS_WEBHOOK_SECRET = "whsec_sandbox_test"
    return settings


@pytest.fixture
def clock(monkeypatch):
    """The sandbox's clock, starting now (so webhook signatures are fresh) on a whole second."""
    fake = Clock(float(int(time.time())))
    monkeypatch.setattr(services, "time", fake)
    return fake


@pytest.fixture
def api(db, clock):
    return ElevenLabsClient()
