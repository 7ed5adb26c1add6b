"""One request makes at most one campaign: a preview is turned into a campaign once, however often it is sent."""

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from campaigns import services
from campaigns.errors import AlreadyCreated
from campaigns.models import Campaign, Recipient

from .test_web_pages import messages_of, new_campaign, upload, upload_token, uploads_dir  # noqa: F401

CSV = "phone_number,first_name\n+12125550100,Ana\n+14155550123,Ben\n"


def test_creating_twice_from_one_preview_makes_one_campaign_and_shows_it(staff, new_campaign):  # noqa: F811
    preview = staff.post("/campaigns/new", new_campaign(recipients_file=upload(CSV)))
    form = new_campaign(recipients_file=None, upload_token=upload_token(preview), action="create")

    first = staff.post("/campaigns/new", form)
    second = staff.post("/campaigns/new", form, follow=True)

    campaign = Campaign.objects.get()
    assert first.status_code == 302
    assert first.url == f"/campaigns/{campaign.pk}"
    assert second.redirect_chain[-1][0] == f"/campaigns/{campaign.pk}"
    assert any("was already created from this preview" in message for message in messages_of(second))
    assert Recipient.objects.filter(campaign=campaign).count() == 2


def test_a_preview_left_unused_can_still_be_created_after_a_refused_create(staff, new_campaign):  # noqa: F811
    # A create refused for a bad input stores nothing, so the same preview may be used again.
    preview = staff.post("/campaigns/new", new_campaign(recipients_file=upload(CSV)))
    token = upload_token(preview)
    refused = staff.post(
        "/campaigns/new", new_campaign(recipients_file=None, upload_token=token, name="", action="create")
    )
    assert refused.status_code == 200
    assert not Campaign.objects.exists()

    created = staff.post("/campaigns/new", new_campaign(recipients_file=None, upload_token=token, action="create"))

    assert created.status_code == 302
    assert Campaign.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_creates_from_one_upload_at_the_same_moment_make_one_campaign(user, agent, phone_number):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions are tested on PostgreSQL (set DATABASE_URL)")
    start = threading.Barrier(2)
    results = []

    def create():
        start.wait()
        try:
            results.append(
                services.campaign_create(
                    user=user,
                    name="Twice",
                    agent_id=agent.elevenlabs_agent_id,
                    phone_number_id=phone_number.pk,
                    recipients_file=SimpleUploadedFile("recipients.csv", CSV.encode()),
                    send_immediately=True,
                    source_upload="0123456789abcdef0123456789abcdef",
                )
            )
        except AlreadyCreated as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(type(result).__name__ for result in results) == ["AlreadyCreated", "Campaign"]
    assert Campaign.objects.count() == 1
    assert Recipient.objects.count() == 2
