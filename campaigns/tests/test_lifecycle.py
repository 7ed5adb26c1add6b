"""Personal data: retention of finished campaigns, erasing one person, and the hashed do-not-call entry."""

import datetime as dt
import json
import re

import pytest
import responses
from django.utils import timezone

from campaigns import lifecycle, services, suppressions
from campaigns.elevenlabs import ElevenLabsClient
from campaigns.events.models import Delivery, WebhookEndpoint
from campaigns.models import (
    Call,
    Campaign,
    CampaignBatch,
    Erasure,
    Recipient,
    Suppression,
    WebhookEvent,
)

from .conftest import BASE
from .conftest import csv_file as _csv_file
from .factories import CallFactory, CampaignFactory, RecipientFactory, SuppressionFactory, UserFactory

pytestmark = pytest.mark.django_db

BATCHES = f"{BASE}/v1/convai/batch-calling"
CONVERSATIONS = f"{BASE}/v1/convai/conversations"
S = Campaign.Status
R = Recipient.Status


def csv_file(text: str):
    upload = _csv_file(text)
    upload.size = len(upload.getvalue())
    return upload


TRANSCRIPT = [{"role": "user", "message": "Yes, Tuesday works, my number is +14155550123.", "time_in_call_secs": 3}]


@pytest.fixture
def remote():
    return ElevenLabsClient(base_url=BASE, api_key="k", max_retries=0, sleep=lambda seconds: None)


@pytest.fixture
def retention(settings):
    settings.PERSONAL_DATA_RETENTION_DAYS = 30
    return settings


def aged(campaign: Campaign, days: int) -> Campaign:
    """The campaign as if its last change (its move to a final status) was `days` ago."""
    Campaign.objects.filter(pk=campaign.pk).update(updated_at=timezone.now() - dt.timedelta(days=days))
    campaign.refresh_from_db()
    return campaign


def finished_campaign(*, user=None, days=40, status=S.COMPLETED, batches=("batch_1",), **fields):
    campaign = CampaignFactory(**({"user": user} if user else {}), status=status, recipients_count=2, **fields)
    for part, remote_id in enumerate(batches, start=1):
        CampaignBatch.objects.create(
            campaign=campaign, part=part, offset=0, size=2, token=f"tok{campaign.pk}-{part}",
            elevenlabs_batch_call_id=remote_id, settled_at=timezone.now(),
        )  # fmt: skip
    ada = RecipientFactory(
        campaign=campaign, phone_number="+14155550123", variables={"first_name": "Ada"},
        overrides={"language": "en"}, status=R.COMPLETED, call_successful="success", call_result="answered",
        summary="Confirmed Tuesday.", conversation_id="conv_ada",
    )  # fmt: skip
    bob = RecipientFactory(
        campaign=campaign, phone_number="+14155550124", variables={"first_name": "Bob"},
        status=R.FAILED, failure_reason="busy", call_result="busy", conversation_id="conv_bob",
    )  # fmt: skip
    CallFactory(
        recipient=ada, conversation_id=f"conv_ada_{campaign.pk}", status="done", call_result="answered",
        summary="Confirmed Tuesday.", transcript=TRANSCRIPT, data_collection={"day": {"value": "Tuesday"}},
        duration_secs=42,
    )  # fmt: skip
    WebhookEvent.objects.create(
        digest=f"d{campaign.pk}", event_type="post_call_transcription", conversation_id=f"conv_ada_{campaign.pk}",
        payload={"data": {"transcript": TRANSCRIPT}}, status=WebhookEvent.Status.APPLIED,
    )  # fmt: skip
    Campaign.objects.filter(pk=campaign.pk).update(import_errors=["Line 7: '+1415' is not a phone number."])
    return aged(campaign, days), ada, bob


# --- Retention ---------------------------------------------------------------------------------


def test_retention_is_off_by_default(http, remote):
    finished_campaign(days=4000)

    assert lifecycle.campaigns_due_for_erasure() == []


def test_a_finished_campaign_past_retention_loses_its_personal_data_and_keeps_its_counts_and_outcomes(
    retention, http, remote
):
    campaign, ada, bob = finished_campaign()
    endpoint = WebhookEndpoint.objects.create(user=campaign.user, url="https://hooks.example.com/x", secret="s")
    delivery = Delivery.objects.create(
        endpoint=endpoint, message_id="msg_1", event_type="recipient.call_finished",
        body=json.dumps({"data": {"phone_number": "+14155550123"}}), ordering_key=f"campaign:{campaign.pk}",
        status=Delivery.Status.SUCCEEDED, next_attempt_at=timezone.now(),
    )  # fmt: skip
    http.add(responses.DELETE, f"{BATCHES}/batch_1", status=200)

    assert lifecycle.campaigns_due_for_erasure() == [campaign.pk]
    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is True

    ada.refresh_from_db()
    bob.refresh_from_db()
    assert ada.phone_number == f"erased:{ada.pk}" and bob.phone_number == f"erased:{bob.pk}"
    assert (ada.variables, ada.overrides, ada.summary) == ({}, {}, "")
    assert (ada.status, ada.call_successful, ada.call_result) == (R.COMPLETED, "success", "answered")
    assert (bob.status, bob.failure_reason) == (R.FAILED, "busy")
    call = Call.objects.get(recipient=ada)
    assert (call.transcript, call.summary, call.data_collection) == ([], "", {})
    assert (call.call_result, call.duration_secs) == ("answered", 42)
    assert WebhookEvent.objects.get().payload == {}
    delivery.refresh_from_db()
    assert "+14155550123" not in delivery.body
    campaign.refresh_from_db()
    assert campaign.personal_data_erased_at is not None
    assert campaign.import_errors == []
    assert (campaign.status, campaign.recipients_count) == (S.COMPLETED, 2)
    assert CampaignBatch.objects.get(campaign=campaign).deleted_at is not None
    assert lifecycle.campaigns_due_for_erasure() == []


@pytest.mark.parametrize("status", [S.IN_PROGRESS, S.PAUSED, S.CANCELLING, S.SCHEDULED, S.PENDING])
def test_a_campaign_still_running_is_never_erased_however_old(retention, http, remote, status):
    campaign, ada, _ = finished_campaign(status=status, days=400)

    assert lifecycle.campaigns_due_for_erasure() == []
    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is False
    ada.refresh_from_db()
    assert ada.phone_number == "+14155550123"
    assert len(http.calls) == 0


def test_a_campaign_finished_within_the_period_is_kept(retention, http, remote):
    campaign, ada, _ = finished_campaign(days=29)

    assert lifecycle.campaigns_due_for_erasure() == []
    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is False
    ada.refresh_from_db()
    assert ada.variables == {"first_name": "Ada"}


@pytest.mark.parametrize("status", [S.CANCELLED, S.FAILED])
def test_cancelled_and_failed_campaigns_are_erased_too(retention, http, remote, status):
    campaign, ada, _ = finished_campaign(status=status)
    http.add(responses.DELETE, f"{BATCHES}/batch_1", status=200)

    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is True
    ada.refresh_from_db()
    assert ada.phone_number.startswith("erased:")


def test_each_batch_is_deleted_at_elevenlabs_once(retention, http, remote):
    campaign, _, _ = finished_campaign(batches=("batch_1", "batch_2"))
    http.add(responses.DELETE, f"{BATCHES}/batch_1", status=200)
    http.add(responses.DELETE, f"{BATCHES}/batch_2", status=200)

    lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote)
    lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote)

    assert [(call.request.method, call.request.url) for call in http.calls] == [
        ("DELETE", f"{BATCHES}/batch_1"),
        ("DELETE", f"{BATCHES}/batch_2"),
    ]


@pytest.mark.parametrize("failure", [503, 429, "timeout"])
def test_a_batch_elevenlabs_did_not_delete_is_tried_again_by_the_next_sweep(retention, http, remote, failure):
    campaign, ada, _ = finished_campaign()
    if failure == "timeout":
        import requests

        http.add(responses.DELETE, f"{BATCHES}/batch_1", body=requests.Timeout("slow"))
    else:
        http.add(responses.DELETE, f"{BATCHES}/batch_1", status=failure, json={"detail": "busy"})

    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is False

    # Erased here already; only ElevenLabs' copy is left for the next sweep.
    ada.refresh_from_db()
    assert ada.phone_number.startswith("erased:")
    assert CampaignBatch.objects.get(campaign=campaign).deleted_at is None
    assert lifecycle.campaigns_due_for_erasure() == [campaign.pk]

    http.replace(responses.DELETE, f"{BATCHES}/batch_1", status=200)
    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is True
    assert CampaignBatch.objects.get(campaign=campaign).deleted_at is not None
    assert lifecycle.campaigns_due_for_erasure() == []


def test_a_batch_elevenlabs_no_longer_has_counts_as_deleted(retention, http, remote):
    campaign, _, _ = finished_campaign()
    http.add(responses.DELETE, f"{BATCHES}/batch_1", status=404, json={"detail": "Not Found"})

    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is True
    assert CampaignBatch.objects.get(campaign=campaign).deleted_at is not None


def test_a_campaign_another_worker_is_erasing_is_left_to_it(retention, http, remote):
    campaign, ada, _ = finished_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(personal_data_claimed_at=timezone.now())

    assert lifecycle.campaigns_due_for_erasure() == []
    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is False
    ada.refresh_from_db()
    assert ada.phone_number == "+14155550123"


def test_a_claim_left_by_a_worker_that_died_expires(retention, http, remote):
    campaign, _, _ = finished_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(personal_data_claimed_at=timezone.now() - dt.timedelta(hours=2))
    http.add(responses.DELETE, f"{BATCHES}/batch_1", status=200)

    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is True


def test_an_outbound_campaign_part_has_nothing_to_delete_at_elevenlabs(retention, http, remote):
    campaign, _, _ = finished_campaign(batches=())
    CampaignBatch.objects.create(
        campaign=campaign, part=1, timezone="America/New_York", offset=0, size=2, token="tok-out",
        elevenlabs_campaign_id="camp_1",
    )  # fmt: skip

    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is True
    assert len(http.calls) == 0
    assert lifecycle.campaigns_due_for_erasure() == []


def test_erasing_a_big_campaign_takes_a_bounded_number_of_queries(
    retention, http, remote, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(lifecycle, "ERASE_CHUNK", 100)
    campaign, _, _ = finished_campaign(batches=())
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, phone_number=f"+1646555{n:04d}", line=n, variables={"n": n}) for n in range(1000)
    )
    aged(campaign, 40)

    # About 1,000 recipients in chunks of 100: a few queries per chunk, none per recipient.
    with django_assert_max_num_queries(60):
        assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote) is True

    assert not Recipient.objects.filter(campaign=campaign).exclude(phone_number__startswith="erased:").exists()
    assert not Recipient.objects.filter(campaign=campaign).exclude(variables={}).exists()


# --- Erasing one person ------------------------------------------------------------------------


def test_erasing_a_number_removes_it_from_every_campaign_of_the_account_and_reports_it(http, remote):
    user = UserFactory(username="alice")
    first, ada, bob = finished_campaign(user=user, days=1)
    second, ada_again, _ = finished_campaign(user=user, days=1, batches=("batch_2",))
    SuppressionFactory(user=user, phone_number="+14155550123")
    endpoint = WebhookEndpoint.objects.create(user=user, url="https://hooks.example.com/x", secret="s")
    delivery = Delivery.objects.create(
        endpoint=endpoint, message_id="msg_1", event_type="suppression.added",
        body=json.dumps({"data": {"phone_number": "+14155550123"}}), status=Delivery.Status.PENDING,
        next_attempt_at=timezone.now(),
    )  # fmt: skip
    for conversation_id in ("conv_ada", f"conv_ada_{first.pk}", f"conv_ada_{second.pk}"):
        http.add(responses.DELETE, f"{CONVERSATIONS}/{conversation_id}", status=200)

    erasure = lifecycle.person_erase(user=user, phone_number="(415) 555-0123 ".replace("(", "+1 ("), client=remote)

    assert (erasure.recipients_erased, erasure.campaigns_touched, erasure.calls_erased) == (2, 2, 2)
    assert erasure.conversations_deleted == 3 and erasure.conversations_not_deleted == []
    assert erasure.do_not_call_kept is True
    assert erasure.notes and "batch call" in erasure.notes[0]
    for recipient in (ada, ada_again):
        recipient.refresh_from_db()
        assert recipient.phone_number == f"erased:{recipient.pk}"
        assert (recipient.variables, recipient.summary, recipient.status) == ({}, "", R.COMPLETED)
    bob.refresh_from_db()
    assert (bob.phone_number, bob.variables) == ("+14155550124", {"first_name": "Bob"})
    assert not Call.objects.exclude(transcript=[]).exists()
    assert not WebhookEvent.objects.exclude(payload={}).exists()
    delivery.refresh_from_db()
    assert "+14155550123" not in delivery.body and delivery.status == Delivery.Status.FAILED
    # Nothing keeps the number, not even the record of its erasure.
    entry = Suppression.objects.get(user=user)
    assert entry.phone_number is None and entry.number_hash == suppressions.number_hash("+14155550123")
    assert "4155550123" not in json.dumps(list(Erasure.objects.values()), default=str)


def test_another_accounts_recipients_with_the_same_number_are_untouched(http, remote):
    alice, mallory = UserFactory(username="alice"), UserFactory(username="mallory")
    _, theirs, _ = finished_campaign(user=mallory, days=1)
    SuppressionFactory(user=mallory, phone_number="+14155550123")

    erasure = lifecycle.person_erase(user=alice, phone_number="+14155550123", client=remote)

    assert (erasure.recipients_erased, erasure.campaigns_touched, erasure.do_not_call_kept) == (0, 0, False)
    theirs.refresh_from_db()
    assert theirs.phone_number == "+14155550123"
    assert Suppression.objects.get(user=mallory).phone_number == "+14155550123"
    assert Call.objects.exclude(transcript=[]).count() == 1
    assert len(http.calls) == 0


def test_a_conversation_elevenlabs_would_not_delete_is_reported_with_why(http, remote):
    user = UserFactory(username="alice")
    campaign, _, _ = finished_campaign(user=user, days=1)
    http.add(responses.DELETE, f"{CONVERSATIONS}/conv_ada", status=404, json={"detail": "Not Found"})
    http.add(responses.DELETE, f"{CONVERSATIONS}/conv_ada_{campaign.pk}", status=503, json={"detail": "down"})

    erasure = lifecycle.person_erase(user=user, phone_number="+14155550123", client=remote)

    assert erasure.conversations_deleted == 1  # the 404: gone already
    [not_deleted] = erasure.conversations_not_deleted
    assert not_deleted["conversation_id"] == f"conv_ada_{campaign.pk}" and "503" in not_deleted["reason"]


def test_a_pending_recipient_of_a_part_not_sent_yet_is_never_called(http, remote, user, agent, phone_number):
    campaign = services.campaign_create(
        user=user, name="Later", agent_id=agent.elevenlabs_agent_id, phone_number_id=phone_number.pk,
        recipients_file=csv_file("phone_number\n+14155550123\n+14155550124\n"), send_immediately=False,
        schedule_date=(timezone.now() + dt.timedelta(days=2)).date(), schedule_time=dt.time(10), timezone_name="UTC",
    )  # fmt: skip

    erasure = lifecycle.person_erase(user=user, phone_number="+14155550123", client=remote)

    assert (erasure.calls_prevented, erasure.calls_not_stopped) == (1, 0)
    erased = Recipient.objects.get(campaign=campaign, phone_number__startswith="erased:")
    assert (erased.status, erased.disposition) == (R.CANCELLED, "erased")
    # What the send would hand ElevenLabs: the other number only.
    from campaigns import dispatch

    batch = CampaignBatch.objects.create(campaign=campaign, part=1, offset=0, size=2, token="tok-later")
    sent = json.loads(dispatch.batch_payload(batch=batch)["recipients"])
    assert [item["phone_number"] for item in sent] == ["+14155550124"]


def test_a_recipient_already_with_elevenlabs_is_reported_as_not_stopped(http, remote):
    user = UserFactory(username="alice")
    campaign = CampaignFactory(user=user, status=S.IN_PROGRESS)
    CampaignBatch.objects.create(
        campaign=campaign, part=1, offset=0, size=1, token="tok-run", elevenlabs_batch_call_id="batch_run"
    )
    recipient = RecipientFactory(campaign=campaign, phone_number="+14155550123", status=R.PENDING)

    erasure = lifecycle.person_erase(user=user, phone_number="+14155550123", client=remote)

    assert (erasure.calls_prevented, erasure.calls_not_stopped) == (0, 1)
    assert any("cannot be taken out" in note for note in erasure.notes)
    recipient.refresh_from_db()
    assert recipient.phone_number.startswith("erased:")


def test_a_lead_of_an_outbound_campaign_is_removed_at_elevenlabs(http, remote):
    user = UserFactory(username="alice")
    campaign = CampaignFactory(user=user, status=S.IN_PROGRESS, calling_hours="09:00-17:00")
    CampaignBatch.objects.create(
        campaign=campaign, part=1, timezone="UTC", offset=0, size=1, token="tok-out", elevenlabs_campaign_id="camp_1"
    )
    recipient = RecipientFactory(
        campaign=campaign, phone_number="+14155550123", status=R.PENDING, elevenlabs_lead_id="lead_1"
    )
    http.add(
        responses.DELETE,
        f"{BASE}/v1/convai/outbound-campaigns/campaigns/camp_1/leads/lead_1",
        json={"campaign_id": "camp_1", "lead_id": "lead_1", "has_calls_in_flight": False},
    )

    erasure = lifecycle.person_erase(user=user, phone_number="+14155550123", client=remote)

    assert (erasure.calls_prevented, erasure.calls_not_stopped) == (1, 0)
    recipient.refresh_from_db()
    assert (recipient.status, recipient.disposition) == (R.CANCELLED, "erased")


def test_a_number_that_is_not_one_is_refused_and_nothing_is_recorded(remote):
    from campaigns.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        lifecycle.person_erase(user=UserFactory(), phone_number="12", client=remote)
    assert not Erasure.objects.exists()


# --- The do-not-call entry kept as a hash ------------------------------------------------------


@pytest.fixture
def erased_entry(user, remote):
    SuppressionFactory(user=user, phone_number="+14155550123", reason="Asked on the phone")
    lifecycle.person_erase(user=user, phone_number="+14155550123", client=remote)
    return Suppression.objects.get(user=user)


def test_an_erased_number_still_blocks_an_upload_that_contains_it(erased_entry, user, agent, phone_number):
    campaign = services.campaign_create(
        user=user, name="Again", agent_id=agent.elevenlabs_agent_id, phone_number_id=phone_number.pk,
        recipients_file=csv_file("phone_number\n(415) 555-0123\n+14155550124\n"), send_immediately=True,
        default_country="US",
    )  # fmt: skip

    assert list(campaign.recipients.values_list("phone_number", flat=True)) == ["+14155550124"]
    assert campaign.suppressed_count == 1


def test_an_erased_number_is_still_listed_when_checked_or_added_again(erased_entry, user):
    assert suppressions.suppressed_numbers(user=user, numbers=["+14155550123", "+14155550124"]) == {"+14155550123"}

    entry, created = suppressions.suppression_add(user=user, phone_number="+1 415 555 0123", source="api")

    assert not created and entry.pk == erased_entry.pk and entry.phone_number is None
    assert Suppression.objects.filter(user=user).count() == 1


def test_an_erased_numbers_entry_is_removed_by_typing_the_number(erased_entry, user):
    assert suppressions.suppression_remove(user=user, phone_number="+14155550123") is True
    assert not Suppression.objects.exists()


def test_a_file_of_numbers_counts_an_erased_one_as_already_listed(erased_entry, user):
    upload = csv_file("phone_number\n+14155550123\n+14155550124\n")

    result = suppressions.suppressions_import(user=user, file=upload, source="api")

    assert (result.added, result.already_listed) == (1, 1)
    assert set(Suppression.objects.values_list("phone_number", flat=True)) == {None, "+14155550124"}


def test_the_hash_is_keyed_not_a_bare_sha256(erased_entry):
    import hashlib

    assert erased_entry.number_hash != hashlib.sha256(b"+14155550123").hexdigest()
    assert len(erased_entry.number_hash) == 64


# --- Admin -------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, settings):
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def test_the_admin_erases_a_person_and_shows_the_report(admin_client, http):
    from django.urls import reverse

    user = UserFactory(username="alice")
    campaign, ada, _ = finished_campaign(user=user, days=1)
    SuppressionFactory(user=user, phone_number="+14155550123")
    http.add(responses.DELETE, f"{CONVERSATIONS}/conv_ada", status=200)
    http.add(responses.DELETE, f"{CONVERSATIONS}/conv_ada_{campaign.pk}", status=200)

    response = admin_client.post(
        reverse("admin:campaigns_erasure_add"), {"user": user.pk, "phone_number": "+1 415 555 0123"}, follow=True
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Erased: 1 recipient erased in 1 campaign, 2 conversations deleted at ElevenLabs" in page
    assert "4155550123" not in page.replace("+1 415 555 0123", "")
    erasure = Erasure.objects.get()
    assert erasure.requested_by == "staff user root" and erasure.do_not_call_kept
    ada.refresh_from_db()
    assert ada.phone_number.startswith("erased:")


def test_the_admin_refuses_a_value_that_is_not_a_number(admin_client):
    from django.urls import reverse

    user = UserFactory(username="alice")

    response = admin_client.post(reverse("admin:campaigns_erasure_add"), {"user": user.pk, "phone_number": "12"})

    assert response.status_code == 200 and "is not a phone number" in response.content.decode()
    assert not Erasure.objects.exists()


def test_the_campaign_admin_shows_where_it_stands_in_retention(admin_client, retention, http):
    from django.urls import reverse

    campaign, _, _ = finished_campaign(days=10)
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "(30 days after it ended)" in page

    aged(campaign, 40)
    http.add(responses.DELETE, f"{BATCHES}/batch_1", status=503, json={"detail": "down"})
    lifecycle.campaign_personal_data_erase(
        campaign_id=campaign.pk, client=ElevenLabsClient(base_url=BASE, api_key="k", max_retries=0)
    )
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "Personal data erased" in page and "1 batch call still to delete at ElevenLabs" in page


def test_the_staff_page_shows_an_erased_entry_as_an_erased_number(staff, user, http):
    SuppressionFactory(user=user, phone_number="+14155550123", reason="Asked on the phone")
    lifecycle.person_erase(user=user, phone_number="+14155550123")

    page = staff.get("/suppressions").content.decode()

    assert "Erased number" in page and "Asked on the phone" in page
    assert "555-0123" not in page and "4155550123" not in page


# --- Against the sandbox -----------------------------------------------------------------------


def test_the_sandbox_deletes_a_batch_once_and_then_knows_it_no_more(sandbox_live, retention):
    from campaigns import elevenlabs

    sandbox = elevenlabs.client_from_settings()
    remote = sandbox.submit_batch(
        call_name="Old reminders", agent_id="agent_demo_reminders", agent_phone_number_id="phnum_demo_main",
        recipients=[{"phone_number": "+14155550120"}],
    )  # fmt: skip
    campaign, _, _ = finished_campaign(batches=(remote.id,))

    assert lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk) is True

    with pytest.raises(elevenlabs.ElevenLabsNotFound):
        sandbox.get_batch(remote.id)
    assert CampaignBatch.objects.get(campaign=campaign).deleted_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_workers_erasing_one_campaign_delete_its_batch_once(retention, http, remote):
    import threading
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent workers are tested on PostgreSQL (set DATABASE_URL)")
    campaign, _, _ = finished_campaign()

    def slow_delete(request):
        time.sleep(0.3)
        return (200, {}, "")

    http.add_callback(responses.DELETE, f"{BATCHES}/batch_1", callback=slow_delete)
    results = []

    def worker():
        try:
            results.append(lifecycle.campaign_personal_data_erase(campaign_id=campaign.pk, client=remote))
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(10)

    assert sorted(results) == [False, False, False, True]
    assert len(http.calls) == 1


def test_erasing_a_number_called_by_many_campaigns_takes_a_bounded_number_of_queries(
    remote, http, django_assert_max_num_queries
):
    user = UserFactory(username="alice")
    for _ in range(20):
        finished_campaign(user=user, days=1, batches=())
    http.add(responses.DELETE, f"{CONVERSATIONS}/conv_ada", status=200)
    http.add(responses.DELETE, re.compile(f"{CONVERSATIONS}/conv_ada_.*"), status=200)

    with django_assert_max_num_queries(25):
        erasure = lifecycle.person_erase(user=user, phone_number="+14155550123", client=remote)

    assert (erasure.recipients_erased, erasure.campaigns_touched, erasure.conversations_deleted) == (20, 20, 21)


def test_the_admin_lists_an_erased_entry_as_an_erased_number(admin_client, remote):
    from django.urls import reverse

    user = UserFactory(username="alice")
    SuppressionFactory(user=user, phone_number="+14155550123", reason="Asked on the phone")
    lifecycle.person_erase(user=user, phone_number="+14155550123", client=remote)

    page = admin_client.get(reverse("admin:campaigns_suppression_changelist")).content.decode()

    assert "erased number" in page and "Asked on the phone" in page
