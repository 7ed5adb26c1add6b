"""The campaign page's Cancel: it never says "no further calls" while ElevenLabs may still place one."""

import pytest

from campaigns.models import Campaign

from .test_tracking import BATCHES, campaign_submitted, remote_batch
from .test_web_pages import messages_of, text_of, uploads_dir  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def elevenlabs_settings(settings):
    settings.ELEVENLABS_BASE_URL = BATCHES.split("/v1/")[0]
    settings.ELEVENLABS_API_KEY = "k"
    return settings


def sent_campaign(user):
    return campaign_submitted(
        user=user, numbers=["+12125550100"], status=Campaign.Status.IN_PROGRESS, batch_status="in_progress"
    )


def test_a_cancel_elevenlabs_has_not_confirmed_says_calls_may_still_be_placed(staff, user, http):
    campaign = sent_campaign(user)
    http.post(f"{BATCHES}/btcal_1/cancel", status=503, body="Service Unavailable")

    response = staff.post(f"/campaigns/{campaign.pk}/cancel", follow=True)

    [message] = messages_of(response)
    assert "ElevenLabs has not confirmed it yet for 1 batch" in message
    assert "calls may still be placed" in message
    assert "No further calls" not in message
    page = text_of(response)
    assert "Cancelling" in page
    assert "Not cancelled yet:" in page
    progress = staff.get(f"/campaigns/{campaign.pk}/progress.json").json()
    assert (progress["status"], progress["final"]) == ("cancelling", False)


def test_a_confirmed_cancel_says_no_further_calls(staff, user, http):
    campaign = sent_campaign(user)
    http.post(f"{BATCHES}/btcal_1/cancel", json=remote_batch("btcal_1", status="cancelled"))

    response = staff.post(f"/campaigns/{campaign.pk}/cancel", follow=True)

    assert messages_of(response) == [f"Campaign “{campaign.name}” cancelled. No further calls will be placed."]
    # the page keeps refreshing until ElevenLabs reports how the calls under way ended
    progress = staff.get(f"/campaigns/{campaign.pk}/progress.json").json()
    assert (progress["status"], progress["final"]) == ("cancelled", False)
