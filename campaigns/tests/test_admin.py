"""Django admin: every model reachable, no query per row, API keys shown once."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import ApiKey

from .factories import AgentFactory, CampaignFactory, PhoneNumberFactory, RecipientFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(admin)
    return client


def make_rows(count):
    owner = UserFactory()
    for _ in range(count):
        campaign = CampaignFactory(user=owner)
        RecipientFactory(campaign=campaign)
        AgentFactory(user=owner)
        PhoneNumberFactory(user=owner)


@pytest.mark.parametrize("model", ["campaign", "recipient", "agent", "phonenumber", "apikey"])
def test_each_changelist_runs_the_same_number_of_queries_for_1_or_20_rows(admin_client, model):
    url = reverse(f"admin:campaigns_{model}_changelist")

    make_rows(1)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    make_rows(19)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_campaign_links_to_its_own_filtered_recipients(admin_client):
    campaign = CampaignFactory(recipients_count=1)
    mine = RecipientFactory(campaign=campaign, phone_number="+12125550100")
    RecipientFactory(phone_number="+14155550123")

    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert f"?campaign__id__exact={campaign.pk}" in page

    listing = admin_client.get(
        reverse("admin:campaigns_recipient_changelist") + f"?campaign__id__exact={campaign.pk}"
    ).content.decode()
    assert mine.phone_number in listing and "+14155550123" not in listing


def test_adding_an_api_key_shows_it_once_and_stores_only_its_hash(admin_client):
    owner = UserFactory(username="bob")
    response = admin_client.post(
        reverse("admin:campaigns_apikey_add"), {"user": owner.pk, "name": "zapier"}, follow=True
    )

    assert response.status_code == 200
    key = ApiKey.objects.get(user=owner)
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) >= 1 and "not shown again" in shown[0]
    raw = shown[0].split("<code>")[1].split("</code>")[0]
    assert ApiKey.hash_key(raw) == key.key_hash

    change_page = admin_client.get(reverse("admin:campaigns_apikey_change", args=[key.pk])).content.decode()
    assert raw not in change_page
    assert 'name="key_hash"' not in change_page
