"""Django admin: every model reachable, no query per row, API keys shown once, each staff user
scoped to their own account, and no query parameter that fails a list."""

import datetime as dt
import html
import queue
import re
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import dispatch, elevenlabs, selectors, services
from campaigns.admin import CappedCountPaginator
from campaigns.models import Agent, ApiKey, Call, Campaign, CampaignBatch, PhoneNumber, Profile, Recipient, WebhookEvent

from .factories import AgentFactory, CallFactory, CampaignFactory, PhoneNumberFactory, RecipientFactory, UserFactory
from .test_tracking import BASE, BATCHES, campaign_submitted, remote_batch, remote_detail, remote_recipient

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


# --- Helpers for the actions ---------------------------------------------------------------


@pytest.fixture
def elevenlabs_settings(settings):
    # The actions build their client from settings: point it at the played ElevenLabs.
    settings.ELEVENLABS_BASE_URL = BASE
    settings.ELEVENLABS_API_KEY = "k"
    settings.ELEVENLABS_BATCH_MAX_RECIPIENTS = 10_000
    return settings


@pytest.fixture
def http(elevenlabs_settings, http):
    # The actions read ElevenLabs' address from settings, so playing it needs both.
    return http


def queued_dispatches(broker_queue) -> list[int]:
    ids = []
    while True:
        try:
            message = broker_queue.get(timeout=0.2)
        except queue.Empty:
            return sorted(ids)
        message.ack()
        assert message.headers["task"] == "campaigns.tasks.campaign_dispatch"
        args, _, _ = message.decode()
        ids.extend(args)


def act(client, action, rows, model="campaign"):
    """Run an admin action on `rows` from their changelist, as the action dropdown does."""
    return client.post(
        reverse(f"admin:campaigns_{model}_changelist"),
        {"action": action, "_selected_action": [row.pk for row in rows]},
        follow=True,
    )


def shown(response) -> list[str]:
    """The messages the user sees after an action, one string each, lines split on <br>."""
    assert response.status_code == 200
    return [str(message).replace("<br>", "\n") for message in response.context["messages"]]


def scheduled(name, *, in_hours=2, **fields):
    return CampaignFactory(
        name=name,
        status=Campaign.Status.SCHEDULED,
        send_immediately=False,
        scheduled_at=timezone.now() + dt.timedelta(hours=in_hours),
        **fields,
    )


# --- Campaign actions ----------------------------------------------------------------------


def test_cancel_cancels_what_it_can_and_says_what_elevenlabs_has_not_confirmed(admin_client, http):
    # Given a scheduled campaign, one that has ended, and one sent to an ElevenLabs that fails to cancel
    waiting = scheduled("Spring reminders")
    RecipientFactory(campaign=waiting, phone_number="+12125550100")
    ended = CampaignFactory(name="Winter survey", status=Campaign.Status.COMPLETED)
    sent = campaign_submitted(
        name="Autumn follow-up",
        numbers=["+12125550101"],
        status=Campaign.Status.IN_PROGRESS,
        batch_status="in_progress",
    )
    http.post(f"{BATCHES}/btcal_1/cancel", status=500, json={"detail": "internal error"})

    # When all three are cancelled from the list
    response = act(admin_client, "cancel", [waiting, ended, sent])
    messages = shown(response)

    # Then the one that could be is cancelled, the ended one is named with its reason, and the
    # one ElevenLabs has not confirmed is said to be still calling until it does
    assert messages[0] == "Cancelled 1 campaign."
    assert (
        messages[1]
        == "Skipped 1 campaign:\n“Winter survey”: The campaign is completed; only an active campaign can be cancelled."
    )
    assert messages[2].startswith("Cancel accepted but not yet confirmed by ElevenLabs for “Autumn follow-up”")
    assert len(messages) == 3
    statuses = dict(Campaign.objects.values_list("name", "status"))
    assert statuses == {
        "Spring reminders": "cancelled",
        "Winter survey": "completed",
        "Autumn follow-up": "cancelling",
    }
    assert "ElevenLabs answered 500: internal error" in Campaign.objects.get(name="Autumn follow-up").error
    assert Recipient.objects.get(campaign=waiting).status == Recipient.Status.CANCELLED


def test_dispatch_now_makes_waiting_campaigns_due_queues_them_and_names_those_it_skipped(
    admin_client, broker_queue, django_capture_on_commit_callbacks
):
    # Given a campaign scheduled for next week, an immediate one not yet claimed, one being sent and one ended
    later = scheduled("Next week", in_hours=24 * 7)
    RecipientFactory(campaign=later)
    waiting = CampaignFactory(name="Waiting")
    RecipientFactory(campaign=waiting)
    sending = CampaignFactory(name="Sending")
    RecipientFactory(campaign=sending)
    assert dispatch.campaign_claim(campaign_id=sending.pk)
    ended = CampaignFactory(name="Done", status=Campaign.Status.COMPLETED)
    assert later.pk not in dispatch.campaigns_due()

    # When they are dispatched now
    with django_capture_on_commit_callbacks(execute=True):
        messages = shown(act(admin_client, "dispatch_now", [later, waiting, sending, ended]))

    # Then the two waiting ones are due and queued, and the others are named with their reason
    assert messages[0] == "Queued 2 campaigns for dispatch now."
    assert sorted(messages[1].splitlines()) == sorted(
        [
            "Skipped 2 campaigns:",
            "“Sending”: The campaign is already being sent.",
            "“Done”: The campaign is completed; only a scheduled or pending campaign can be dispatched.",
        ]
    )
    later.refresh_from_db()
    assert later.status == Campaign.Status.SCHEDULED
    assert abs(later.scheduled_at - timezone.now()) < dt.timedelta(seconds=30)
    assert later.pk in dispatch.campaigns_due()
    assert queued_dispatches(broker_queue) == sorted([later.pk, waiting.pk])


def test_dispatch_now_keeps_a_schedule_that_is_already_past(
    admin_client, broker_queue, django_capture_on_commit_callbacks
):
    overdue = scheduled("Overdue", in_hours=-1)
    was_due_at = overdue.scheduled_at

    with django_capture_on_commit_callbacks(execute=True):
        assert shown(act(admin_client, "dispatch_now", [overdue])) == ["Queued 1 campaign for dispatch now."]

    overdue.refresh_from_db()
    assert overdue.scheduled_at == was_due_at
    assert queued_dispatches(broker_queue) == [overdue.pk]


def test_sync_status_of_a_campaign_a_worker_is_polling_says_so_and_asks_nothing(admin_client, http):
    busy = campaign_submitted(name="Busy", numbers=["+12125550100"])
    Campaign.objects.filter(pk=busy.pk).update(poll_lease_until=timezone.now() + dt.timedelta(minutes=1))

    messages = shown(act(admin_client, "sync_status", [busy]))

    assert messages == [
        "Skipped 1 campaign:\n“Busy”: a worker is polling it right now; its page shows the result shortly."
    ]
    assert len(http.calls) == 0


def test_sync_status_brings_sent_campaigns_in_step_and_names_the_ones_it_could_not(admin_client, http):
    # Given a campaign whose calls have finished at ElevenLabs, one ElevenLabs no longer knows, one never sent
    running = campaign_submitted(name="Running", numbers=["+12125550100", "+12125550101"])
    lost = campaign_submitted(name="Lost", numbers=["+12125550102"], batch_ids=("btcal_2",))
    unsent = CampaignFactory(name="Unsent")
    http.get(
        f"{BATCHES}/btcal_1",
        json=remote_detail(
            "btcal_1",
            status="completed",
            recipients=[
                remote_recipient("+12125550100", "completed", "conv_100"),
                remote_recipient("+12125550101", "failed"),
            ],
        ),
    )
    http.get(f"{BATCHES}/btcal_2", status=404, json={"detail": {"status": "not_found", "message": "Batch not found"}})

    # When their status is synced from the list
    messages = shown(act(admin_client, "sync_status", [running, lost, unsent]))

    # Then the first is in step, and the others are named with their reason
    assert messages[0] == "Synced 1 campaign with ElevenLabs: “Running” is completed."
    assert sorted(messages[1].splitlines()) == sorted(
        [
            "Skipped 2 campaigns:",
            "“Lost”: ElevenLabs could not report its status: ElevenLabs answered 404: Batch not found",
            "“Unsent”: it has not been sent to ElevenLabs yet.",
        ]
    )
    assert dict(Recipient.objects.filter(campaign=running).values_list("phone_number", "status")) == {
        "+12125550100": "completed",
        "+12125550101": "failed",
    }
    running.refresh_from_db()
    assert (running.status, running.calls_finished) == (Campaign.Status.COMPLETED, 2)
    lost.refresh_from_db()
    assert lost.status == Campaign.Status.PENDING


def test_retry_with_nothing_to_retry_says_why_and_changes_nothing(admin_client, http):
    answered = campaign_submitted(
        name="All answered", numbers=["+12125550100"], status=Campaign.Status.COMPLETED, batch_status="completed"
    )
    Recipient.objects.filter(campaign=answered).update(status=Recipient.Status.COMPLETED)
    unsent = CampaignFactory(name="Not sent")

    messages = shown(act(admin_client, "retry_failed_calls", [answered, unsent]))

    assert len(messages) == 1
    assert sorted(messages[0].splitlines()) == sorted(
        [
            "Skipped 2 campaigns:",
            "“All answered”: There are no failed or unanswered calls to retry once the batch has finished.",
            "“Not sent”: The campaign is pending; only a campaign that is calling or completed can retry calls.",
        ]
    )
    assert len(http.calls) == 0
    assert Recipient.objects.get(campaign=answered).status == Recipient.Status.COMPLETED


def test_retry_calls_failed_recipients_again_and_counts_them(admin_client, http):
    finished = campaign_submitted(
        name="Some failed",
        numbers=["+12125550100", "+12125550101", "+12125550102"],
        status=Campaign.Status.COMPLETED,
        batch_status="completed",
    )
    for number, status in (("+12125550100", "completed"), ("+12125550101", "failed"), ("+12125550102", "voicemail")):
        Recipient.objects.filter(campaign=finished, phone_number=number).update(status=status)
    http.post(f"{BATCHES}/btcal_1/retry", json=remote_batch("btcal_1", status="pending"))

    messages = shown(act(admin_client, "retry_failed_calls", [finished]))

    assert messages == ["Retrying 2 calls in 1 campaign."]
    assert [(call.request.method, call.request.url) for call in http.calls] == [("POST", f"{BATCHES}/btcal_1/retry")]
    finished.refresh_from_db()
    assert finished.status == Campaign.Status.IN_PROGRESS
    assert dict(Recipient.objects.filter(campaign=finished).values_list("phone_number", "status")) == {
        "+12125550100": "completed",
        "+12125550101": "pending",
        "+12125550102": "pending",
    }


# --- Agents and phone numbers --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("model, factory", [("agent", AgentFactory), ("phonenumber", PhoneNumberFactory)])
def test_sync_from_elevenlabs_imports_the_workspace_once_for_each_owner_of_the_selection(
    sandbox_live, admin_client, model, factory
):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    rows = [factory(user=alice), factory(user=alice), factory(user=bob)]
    try:
        messages = shown(act(admin_client, "sync_from_elevenlabs", rows, model=model))
    finally:
        # no idle keep-alive connection left for the live server's thread to wait on
        elevenlabs.client_from_settings().session.close()

    assert messages == [
        "Synced 3 agents and 4 phone numbers for alice.",
        "Synced 3 agents and 4 phone numbers for bob.",
    ]
    for owner in (alice, bob):
        assert {"agent_demo_reminders", "agent_demo_survey", "agent_demo_collections"} <= set(
            Agent.objects.filter(user=owner).values_list("elevenlabs_agent_id", flat=True)
        )
        assert PhoneNumber.objects.filter(user=owner, elevenlabs_phone_number_id="phnum_demo_main").exists()


def test_sync_from_elevenlabs_reports_an_elevenlabs_that_refuses_the_key(admin_client, http):
    agent = AgentFactory(user=UserFactory(username="carol"))
    http.get(
        f"{BASE}/v1/convai/agents", status=401, json={"detail": {"status": "invalid_api_key", "message": "Bad key"}}
    )

    messages = shown(act(admin_client, "sync_from_elevenlabs", [agent], model="agent"))

    assert messages == [
        "Could not sync carol: Could not read the ElevenLabs workspace: ElevenLabs answered 401: Bad key"
    ]
    assert Agent.objects.count() == 1


# --- Recipients on a big table -------------------------------------------------------------


def test_the_recipients_of_a_campaign_are_listed_without_a_full_count_of_the_table(admin_client):
    # Given a campaign with 300 recipients, and another campaign's recipient
    campaign = CampaignFactory(recipients_count=300)
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, phone_number=f"+1212555{n:04d}", line=n + 2) for n in range(300)
    )
    RecipientFactory(phone_number="+14155550123")
    table = Recipient._meta.db_table
    changelist = reverse("admin:campaigns_recipient_changelist")

    for url in (changelist, f"{changelist}?campaign__id__exact={campaign.pk}"):
        # When the list is opened
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url)

        # Then every count over the recipients is a LIMITed one, and the first page of rows shows
        assert response.status_code == 200
        counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and table in q["sql"]]
        assert counts, "the paginator counts the rows"
        assert all(" LIMIT " in sql.upper() for sql in counts), counts
        page = response.content.decode()
        assert "+12125550000" in page and "+12125550099" in page
        assert "+12125550100" not in page  # on page 2

    assert "300 recipients" in page
    assert "+14155550123" not in page
    page_3 = admin_client.get(f"{changelist}?campaign__id__exact={campaign.pk}&p=3").content.decode()
    assert "+12125550299" in page_3 and "+12125550199" not in page_3


def test_the_recipients_count_stops_at_the_cap():
    campaign = CampaignFactory()
    Recipient.objects.bulk_create(
        Recipient(campaign=campaign, phone_number=f"+1212555{n:04d}", line=n + 2) for n in range(30)
    )

    class SmallCap(CappedCountPaginator):
        count_cap = 21

    assert SmallCap(Recipient.objects.all(), 10).count == 21
    assert SmallCap(Recipient.objects.filter(pk__lte=Recipient.objects.order_by("pk")[4].pk), 10).count == 5


def test_the_recipient_list_filters_by_status_and_finds_a_number(admin_client):
    campaign = CampaignFactory()
    RecipientFactory(campaign=campaign, phone_number="+12125550100", status=Recipient.Status.FAILED)
    RecipientFactory(campaign=campaign, phone_number="+12125550101", status=Recipient.Status.COMPLETED)
    changelist = reverse("admin:campaigns_recipient_changelist")

    failed = admin_client.get(f"{changelist}?status__exact=failed").content.decode()
    found = admin_client.get(changelist, {"q": "+12125550101"}).content.decode()

    assert "+12125550100" in failed and "+12125550101" not in failed
    assert "+12125550101" in found and "+12125550100" not in found


# --- Campaign list and page ----------------------------------------------------------------


def test_the_campaign_list_filters_by_status_type_and_date_and_finds_a_batch_id(admin_client):
    CampaignFactory(name="Immediate one")
    scheduled("Scheduled one")
    old = CampaignFactory(name="Old one", status=Campaign.Status.COMPLETED, elevenlabs_batch_call_id="btcal_old")
    Campaign.objects.filter(pk=old.pk).update(created_at=dt.datetime(2020, 1, 15, tzinfo=dt.UTC))
    changelist = reverse("admin:campaigns_campaign_changelist")

    def listed(query):
        page = admin_client.get(changelist + query).content.decode()
        return {name for name in ("Immediate one", "Scheduled one", "Old one") if name in page}

    assert listed("") == {"Immediate one", "Scheduled one", "Old one"}
    assert listed("?status__exact=scheduled") == {"Scheduled one"}
    assert listed("?type=immediate") == {"Immediate one", "Old one"}
    assert listed("?type=scheduled") == {"Scheduled one"}
    assert listed("?created_at__year=2020") == {"Old one"}
    assert listed("?q=btcal_old") == {"Old one"}


def test_the_filtered_campaign_list_runs_the_same_number_of_queries_for_1_or_20_rows(admin_client):
    url = reverse("admin:campaigns_campaign_changelist") + f"?type=immediate&created_at__year={timezone.now().year}"

    make_rows(1)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    make_rows(19)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('name="_selected_action"') == 20
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_campaign_page_shows_its_batches_error_and_counters_and_none_can_be_edited(admin_client):
    campaign = campaign_submitted(name="Sent", numbers=["+12125550100", "+12125550101"], status=Campaign.Status.FAILED)
    Campaign.objects.filter(pk=campaign.pk).update(error="ElevenLabs refused the campaign: bad agent", calls_finished=1)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    page = admin_client.get(url).content.decode()

    assert "btcal_1" in page and "ElevenLabs refused the campaign: bad agent" in page
    for field in ("error", "status", "calls_dispatched", "calls_finished", "recipients_count", "batches-0-status"):
        assert f'name="{field}"' not in page
    assert 'name="name"' in page

    # Saving the form renames the campaign; the error, counters and batches stay as the workers left them
    form = {
        "name": "Renamed",
        "user": campaign.user_id,
        "agent": campaign.agent_id,
        "phone_number": campaign.phone_number_id,
        "send_immediately": "on",
        "timezone": "UTC",
        "error": "edited",
        "calls_finished": "99",
        "batches-TOTAL_FORMS": "1",
        "batches-INITIAL_FORMS": "1",
        "batches-MIN_NUM_FORMS": "0",
        "batches-MAX_NUM_FORMS": "0",
        "batches-0-id": campaign.batches.get().pk,
        "batches-0-campaign": campaign.pk,
        "batches-0-status": "edited",
    }
    assert admin_client.post(url, form).status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.error, campaign.calls_finished) == (
        "Renamed",
        "ElevenLabs refused the campaign: bad agent",
        1,
    )
    assert campaign.batches.get().status == "pending"


def test_campaigns_are_not_added_in_the_admin(admin_client):
    # They are created with their recipients, by the API or the staff upload form.
    assert admin_client.get(reverse("admin:campaigns_campaign_add")).status_code == 403


# --- API keys ------------------------------------------------------------------------------


def test_revoking_keys_revokes_the_active_ones_and_names_those_already_revoked(admin_client):
    owner = UserFactory(username="dave")
    active = services.api_key_create(user=owner, name="zapier").api_key
    old = services.api_key_create(user=owner, name="old").api_key
    services.api_key_revoke(api_key=old)
    revoked_at = ApiKey.objects.get(pk=old.pk).revoked_at

    messages = shown(act(admin_client, "revoke", [active, old], model="apikey"))

    assert messages == ["Revoked 1 API key.", f"Skipped 1 API key:\n“{old}”: it was already revoked."]
    assert ApiKey.objects.get(pk=active.pk).revoked_at is not None
    assert ApiKey.objects.get(pk=old.pk).revoked_at == revoked_at


# --- Who sees what: superusers everything, other staff their own account ------------------

SCOPED = ["campaign", "recipient", "call", "agent", "phonenumber", "apikey", "profile"]


def one_of_everything(owner, tag, number):
    """A scheduled campaign with a recipient and a call, an agent, a number, a key and a profile."""
    campaign = scheduled(
        f"{tag} campaign",
        user=owner,
        agent=AgentFactory(user=owner, name=f"{tag} agent"),
        phone_number=PhoneNumberFactory(user=owner, label=f"{tag} line"),
    )
    recipient = RecipientFactory(campaign=campaign, phone_number=number)
    return SimpleNamespace(
        campaign=campaign,
        recipient=recipient,
        call=CallFactory(recipient=recipient, conversation_id=f"conv_{tag}"),
        agent=campaign.agent,
        phonenumber=campaign.phone_number,
        apikey=services.api_key_create(user=owner, name=f"{tag} key").api_key,
        profile=Profile.objects.create(user=owner, timezone="Europe/Paris"),
    )


@pytest.fixture
def mine(user):
    return one_of_everything(user, "alice", "+12125550100")


@pytest.fixture
def theirs(other_user):
    return one_of_everything(other_user, "mallory", "+14155550199")


def grant_every_campaigns_permission(user):
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="campaigns"))


@pytest.fixture
def staff_client(user):
    """Alice: staff with every permission on the campaigns models, not a superuser."""
    grant_every_campaigns_permission(user)
    client = Client()
    client.force_login(user)
    return client


def change_link(model, row) -> str:
    return f'href="{reverse(f"admin:campaigns_{model}_change", args=[row.pk])}'


@pytest.mark.parametrize("model", SCOPED)
def test_a_staff_user_lists_only_their_own_accounts_rows(staff_client, mine, theirs, model):
    page = staff_client.get(reverse(f"admin:campaigns_{model}_changelist")).content.decode()

    assert change_link(model, getattr(mine, model)) in page
    assert change_link(model, getattr(theirs, model)) not in page
    assert "mallory" not in page and "+14155550199" not in page
    # Recipients and calls are history: no action, so no row to tick.
    assert page.count('name="_selected_action"') == (0 if model in ("recipient", "call") else 1)


@pytest.mark.parametrize("model", SCOPED)
def test_a_superuser_lists_every_accounts_rows(admin_client, mine, theirs, model):
    page = admin_client.get(reverse(f"admin:campaigns_{model}_changelist")).content.decode()

    assert change_link(model, getattr(mine, model)) in page
    assert change_link(model, getattr(theirs, model)) in page


@pytest.mark.parametrize("model", SCOPED)
def test_another_accounts_record_answers_404_like_a_missing_one(staff_client, mine, theirs, model):
    row = getattr(theirs, model)

    for view in ("change", "history", "delete"):
        assert staff_client.get(reverse(f"admin:campaigns_{model}_{view}", args=[row.pk])).status_code == 404
        assert staff_client.get(reverse(f"admin:campaigns_{model}_{view}", args=[10**9])).status_code == 404
    assert (
        staff_client.post(reverse(f"admin:campaigns_{model}_delete", args=[row.pk]), {"post": "yes"}).status_code == 404
    )
    assert type(row).objects.filter(pk=row.pk).exists()
    assert (
        staff_client.get(reverse(f"admin:campaigns_{model}_change", args=[getattr(mine, model).pk])).status_code == 200
    )


@pytest.mark.parametrize(
    "model, term",
    [
        ("campaign", "mallory campaign"),
        ("recipient", "+14155550199"),
        ("call", "conv_mallory"),
        ("agent", "mallory agent"),
        ("phonenumber", "mallory line"),
        ("apikey", "mallory"),
        ("profile", "mallory"),
    ],
)
def test_another_accounts_rows_never_appear_in_search(staff_client, admin_client, mine, theirs, model, term):
    changelist = reverse(f"admin:campaigns_{model}_changelist")

    found = staff_client.get(changelist, {"q": term}).content.decode()

    assert change_link(model, getattr(theirs, model)) not in found
    assert 'name="_selected_action"' not in found
    # while the search itself finds it for a superuser
    assert change_link(model, getattr(theirs, model)) in admin_client.get(changelist, {"q": term}).content.decode()


def test_dates_filter_choices_and_counts_come_from_the_users_own_rows(staff_client, mine, theirs):
    Campaign.objects.filter(pk=theirs.campaign.pk).update(created_at=dt.datetime(2020, 1, 15, tzinfo=dt.UTC))
    Call.objects.filter(pk=theirs.call.pk).update(status="failed")
    Call.objects.filter(pk=mine.call.pk).update(status="done")
    CallFactory(recipient=mine.recipient, attempt=2, status="busy")  # a filter shows from two values
    campaigns = reverse("admin:campaigns_campaign_changelist")

    listing = staff_client.get(campaigns, {"_facets": "1"}).content.decode()
    in_2020 = staff_client.get(campaigns, {"created_at__year": "2020"}).content.decode()
    calls = staff_client.get(reverse("admin:campaigns_call_changelist")).content.decode()

    assert f"created_at__year={timezone.now().year}" in listing and "created_at__year=2020" not in listing
    assert "Scheduled (1)" in listing
    assert 'name="_selected_action"' not in in_2020
    assert "status=done" in calls and "status=busy" in calls
    assert "status=failed" not in calls


def test_an_action_never_reaches_another_accounts_rows(staff_client, user, other_user, mine, theirs, http):
    spare = CampaignFactory(user=user, name="alice spare")
    CampaignFactory(user=other_user, name="mallory spare")
    # Both rows ticked, as a forged form would send them
    cancelled = shown(act(staff_client, "cancel", [mine.campaign, theirs.campaign]))
    revoked = shown(act(staff_client, "revoke", [mine.apikey, theirs.apikey], model="apikey"))
    # and every row of the list, selected across pages
    staff_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "delete_selected", "select_across": "1", "_selected_action": [spare.pk], "post": "yes"},
    )

    assert cancelled == ["Cancelled 1 campaign."]
    assert revoked == ["Revoked 1 API key."]
    assert dict(Campaign.objects.values_list("name", "status")) == {
        "alice campaign": "cancelled",  # it has a call: kept
        "mallory campaign": "scheduled",
        "mallory spare": "pending",
    }
    assert ApiKey.objects.get(pk=theirs.apikey.pk).is_active and not ApiKey.objects.get(pk=mine.apikey.pk).is_active
    assert len(http.calls) == 0


def test_lookups_for_a_related_record_offer_only_the_users_own(staff_client, mine, theirs):
    def popup(model):
        url = reverse(f"admin:campaigns_{model}_changelist")
        return staff_client.get(url, {"_to_field": "id", "_popup": "1"}).content.decode()

    agents, campaigns = popup("agent"), popup("campaign")
    found = staff_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "campaigns", "model_name": "campaign", "field_name": "agent", "term": "agent"},
    ).json()

    assert "alice agent" in agents and "mallory agent" not in agents
    assert "alice campaign" in campaigns and "mallory campaign" not in campaigns
    assert [result["text"] for result in found["results"]] == [str(mine.agent)]


def test_a_form_offers_only_the_users_own_records_and_refuses_anyone_elses(staff_client, user, mine, theirs):
    # Not sent yet (a sent campaign's setup cannot change): no call, its batch not submitted.
    Call.objects.filter(campaign=mine.campaign).delete()
    CampaignBatch.objects.create(
        campaign=mine.campaign, part=1, offset=0, size=1, token="t_alice", last_error="alice batch waits"
    )
    url = reverse("admin:campaigns_campaign_change", args=[mine.campaign.pk])

    response = staff_client.get(url)
    form = response.context["adminform"].form
    assert list(form.fields["user"].queryset) == [user]
    assert list(form.fields["agent"].queryset) == [mine.agent]
    assert list(form.fields["phone_number"].queryset) == [mine.phonenumber]
    assert "alice batch waits" in response.content.decode()

    def save(**changes):
        data = {
            "name": "Renamed",
            "user": user.pk,
            "agent": mine.agent.pk,
            "phone_number": mine.phonenumber.pk,
            "timezone": "UTC",
            "batches-TOTAL_FORMS": "1",
            "batches-INITIAL_FORMS": "1",
            "batches-MIN_NUM_FORMS": "0",
            "batches-MAX_NUM_FORMS": "0",
            "batches-0-id": mine.campaign.batches.get().pk,
            "batches-0-campaign": mine.campaign.pk,
        }
        return staff_client.post(url, {**data, **changes})

    for refused in (
        {"agent": theirs.agent.pk},
        {"phone_number": theirs.phonenumber.pk},
        {"user": theirs.campaign.user_id},
    ):
        response = save(**refused)
        page = response.content.decode()
        assert response.status_code == 200 and "Select a valid choice" in page
        assert "mallory" not in page  # not even as the label of the id typed in
    assert Campaign.objects.get(pk=mine.campaign.pk).name == "alice campaign"

    assert save().status_code == 302
    assert Campaign.objects.get(pk=mine.campaign.pk).name == "Renamed"


def test_webhook_events_users_and_groups_are_for_superusers_only(staff_client, admin_client, user, other_user):
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth"))
    group = Group.objects.create(name="Support")
    event = WebhookEvent.objects.create(digest="0" * 64, event_type="post_call_transcription")
    hidden = [
        (reverse("admin:campaigns_webhookevent_changelist"), 403),
        (reverse("admin:campaigns_webhookevent_change", args=[event.pk]), 404),
        (reverse("admin:auth_user_changelist"), 403),
        (reverse("admin:auth_user_add"), 403),
        (reverse("admin:auth_user_change", args=[other_user.pk]), 404),
        (reverse("admin:auth_user_password_change", args=[other_user.pk]), 404),
        (reverse("admin:auth_group_changelist"), 403),
        (reverse("admin:auth_group_add"), 403),
        (reverse("admin:auth_group_change", args=[group.pk]), 404),
    ]

    index = staff_client.get(reverse("admin:index")).content.decode()

    assert reverse("admin:campaigns_campaign_changelist") in index
    assert reverse("admin:campaigns_webhookevent_changelist") not in index
    assert reverse("admin:auth_user_changelist") not in index
    assert reverse("admin:auth_group_changelist") not in index
    assert [(url, staff_client.get(url).status_code) for url, _ in hidden] == hidden
    assert staff_client.post(reverse("admin:auth_user_add"), {"username": "eve"}).status_code == 403
    assert not get_user_model().objects.filter(username="eve").exists()
    assert staff_client.post(reverse("admin:auth_group_add"), {"name": "Everything"}).status_code == 403
    assert not Group.objects.filter(name="Everything").exists()
    for url, _ in hidden:
        assert admin_client.get(url).status_code == 200


# --- Query parameters a list cannot answer -------------------------------------------------

CHANGELISTS = [f"admin:campaigns_{model}_changelist" for model in [*SCOPED, "webhookevent"]] + [
    "admin:auth_user_changelist"
]

HOSTILE = [
    # the recipients' and calls' campaign link
    "campaign__id__exact=abc",
    "campaign__id__exact=1.5",
    "campaign__id__exact=99999999999999999999",
    "campaign__id__exact=%00",
    "_facets=1&campaign__id__exact=abc",
    # fields and lookups no filter offers
    "nosuchfield=1",
    "status__nosuchlookup=1",
    "id__range=1",
    "id__in=99999999999999999999",
    "name__regex=%5B",
    "status__regex=%5B",
    "variables__contains=x",
    "variables__foo__bar=%00",
    "payload__contains=%7B",
    "key_hash__startswith=a",
    "user__password__startswith=x",
    "created_at__year=0",
    "created_at__iso_year=0",
    # dates at, past or outside the calendar's ends
    "created_at__year=9999",
    "created_at__year=9999&created_at__month=12&created_at__day=31",
    "created_at__year=2020&created_at__year=9999",
    "received_at__year=9999&received_at__month=12",
    "created_at__year=abc",
    "created_at__year=2020&created_at__month=13",
    "created_at__gte=0001-01-01T00:00:00%2B14:00",
    "created_at__lt=9999-12-31T23:59:59-12:00",
    "scheduled_at__gte=0001-01-01T00:00:00%2B14:00",
    "created_at=0001-01-01T00:00:00%2B14:00",
    "created_at__exact=9999-12-31T23:59:59-12:00",
    "revoked_at__lt=9999-12-31T23:59:59-12:00",
    "created_at__gte=notadate",
    "scheduled_at__isnull=maybe",
    # values no filter offers
    "status=nope",
    "status__exact=nope",
    "status__exact=%00",
    "event_type__exact=%00",
    "supports_outbound__exact=maybe",
    "is_staff__exact=%00",
    "type=nope",
    "waiting=nope",
    # ordering, pages, search, popups
    "o=notanumber",
    "o=999.-7.x",
    "p=garbage",
    "p=-1",
    "p=99999999999999999999",
    "q=%00",
    "q=" + "9" * 2000,
    "all=",
    "_to_field=password",
    "_popup=1&_to_field=id",
    "e=1&nosuchfield=1",
]


SUPERUSERS_ONLY = ["admin:campaigns_webhookevent_changelist", "admin:auth_user_changelist"]


def sign_in(client, user, role):
    if role == "superuser":
        user.is_superuser = True
        user.save()
    else:
        grant_every_campaigns_permission(user)
    client.force_login(user)


def more_rows_to_filter(*accounts):
    """A second call (a filter over a column's values shows from two) and two webhook events."""
    for account in accounts:
        CallFactory(recipient=account.recipient, attempt=2, status="busy", call_result="answered")
    WebhookEvent.objects.create(digest="0" * 64, event_type="post_call_transcription")
    WebhookEvent.objects.create(digest="1" * 64, event_type="call_initiation_failure")


@pytest.mark.parametrize("changelist", CHANGELISTS)
@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_every_link_a_list_offers_answers(client, user, mine, theirs, role, changelist):
    more_rows_to_filter(mine, theirs)
    sign_in(client, user, role)
    url = reverse(changelist)
    if role == "staff" and changelist in SUPERUSERS_ONLY:
        assert client.get(url).status_code == 403
        return

    links = set()
    for page in (url, f"{url}?_facets=True"):
        links |= {html.unescape(href) for href in re.findall(r'href="(\?[^"]*)"', client.get(page).content.decode())}
    answers = {link: client.get(url + link).status_code for link in sorted(links)}

    assert len(answers) > 1
    assert answers == dict.fromkeys(sorted(links), 200)


@pytest.mark.parametrize("changelist", CHANGELISTS)
@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_no_query_parameter_fails_a_list(client, user, mine, theirs, role, changelist):
    more_rows_to_filter(mine, theirs)
    sign_in(client, user, role)
    url = reverse(changelist)

    failures = []
    for query in HOSTILE:
        try:
            with transaction.atomic():  # a failed query must not hide the ones after it
                status = client.get(f"{url}?{query}").status_code
        except Exception as exc:  # the test client raises what the view raised
            status = repr(exc)
        if not isinstance(status, int) or status >= 500:
            failures.append(f"?{query}: {status}")

    assert failures == []


def test_a_value_a_filter_cannot_take_goes_back_to_the_whole_list(admin_client):
    for model, query in [
        ("recipient", "campaign__id__exact=abc"),
        ("call", "campaign__id__exact=99999999999999999999"),
        ("campaign", "created_at__year=9999&created_at__month=12"),
        ("campaign", "created_at__lt=9999-12-31T23:59:59-12:00"),
        ("campaign", "status__exact=%00"),
    ]:
        changelist = reverse(f"admin:campaigns_{model}_changelist")
        response = admin_client.get(f"{changelist}?{query}")
        assert (response.status_code, response["Location"]) == (302, f"{changelist}?e=1"), query


def test_a_lookup_no_filter_offers_is_a_bad_request(admin_client):
    for model, query in [
        ("campaign", "name__regex=%5B"),
        ("apikey", "key_hash__startswith=a"),
        ("recipient", "variables__contains=x"),
        ("agent", "created_at__gte=2020-01-01T00:00:00%2B00:00"),
        ("campaign", "status__in=scheduled,pending"),
    ]:
        assert admin_client.get(f"{reverse(f'admin:campaigns_{model}_changelist')}?{query}").status_code == 400, query

    # while the filters' own parameters still work
    users = reverse("admin:auth_user_changelist")
    assert admin_client.get(f"{users}?is_staff__exact=1&groups__id__exact=1").status_code == 200


# --- History: sent campaigns keep their setup, called ones are kept, recipients only looked at


def change_form(campaign, **changes) -> dict:
    """The campaign's change form as the admin posts it, with `changes`."""
    data = {
        "name": campaign.name,
        "user": campaign.user_id,
        "agent": campaign.agent_id,
        "phone_number": campaign.phone_number_id,
        "timezone": campaign.timezone,
        "batches-TOTAL_FORMS": "0",
        "batches-INITIAL_FORMS": "0",
        "batches-MIN_NUM_FORMS": "0",
        "batches-MAX_NUM_FORMS": "0",
    }
    if campaign.send_immediately:
        data["send_immediately"] = "on"
    if campaign.scheduled_at:
        data["scheduled_at_0"] = campaign.scheduled_at.strftime("%Y-%m-%d")
        data["scheduled_at_1"] = campaign.scheduled_at.strftime("%H:%M:%S")
    return {**data, **changes}


SETUP_INPUTS = [
    'name="user"',
    'name="agent"',
    'name="phone_number"',
    'name="send_immediately"',
    'name="scheduled_at_0"',
]


def sent_by(how, user):
    """A campaign of `user` that was sent, in one of the ways a campaign shows it."""
    campaign = scheduled(f"Sent: {how}", user=user, timezone="Europe/Paris")
    if how == "claimed":  # a worker is submitting it: still pending
        assert dispatch.campaign_claim(campaign_id=campaign.pk, now=campaign.scheduled_at)
    elif how == "batch sent":
        CampaignBatch.objects.create(
            campaign=campaign, part=1, offset=0, size=1, token="t1", elevenlabs_campaign_id="c1"
        )
    elif how == "called":
        CallFactory(recipient=RecipientFactory(campaign=campaign))
    else:
        Campaign.objects.filter(pk=campaign.pk).update(status=how)
    campaign.refresh_from_db()
    return campaign


@pytest.mark.parametrize("role", ["superuser", "staff"])
@pytest.mark.parametrize("how", ["in_progress", "completed", "cancelled", "claimed", "batch sent", "called"])
def test_a_sent_campaign_keeps_its_agent_number_and_schedule_and_only_its_name_changes(client, user, role, how):
    campaign = sent_by(how, user)
    before = Campaign.objects.values("user", "agent", "phone_number", "send_immediately", "scheduled_at").get(
        pk=campaign.pk
    )
    sign_in(client, user, role)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    page = client.get(url).content.decode()
    response = client.post(
        url,
        change_form(
            campaign,
            name="Renamed",
            agent=AgentFactory(user=user).pk,
            phone_number=PhoneNumberFactory(user=user).pk,
            send_immediately="on",
            scheduled_at_0="2031-01-01",
            timezone="UTC",
        ),
    )

    assert 'name="name"' in page
    assert [field for field in SETUP_INPUTS if field in page] == []
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"
    assert Campaign.objects.values(*before).get(pk=campaign.pk) == before
    assert Campaign.objects.get(pk=campaign.pk).timezone == "Europe/Paris"


@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_a_campaign_not_sent_yet_can_still_be_set_up(client, user, role):
    campaign = scheduled("Next week", user=user, in_hours=24 * 7)
    RecipientFactory(campaign=campaign)
    other_agent = AgentFactory(user=user)
    sign_in(client, user, role)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])

    page = client.get(url).content.decode()
    response = client.post(
        url, change_form(campaign, agent=other_agent.pk, scheduled_at_0="2031-01-01", scheduled_at_1="09:30:00")
    )

    assert [field for field in SETUP_INPUTS if field in page] == SETUP_INPUTS
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.agent == other_agent
    assert campaign.scheduled_at == dt.datetime(2031, 1, 1, 9, 30, tzinfo=dt.UTC)
    assert (campaign.status, campaign.dispatch_claimed_at) == (Campaign.Status.SCHEDULED, None)


def test_a_form_loaded_before_a_worker_claimed_the_campaign_saves_only_its_name(user):
    campaign = scheduled("Due", user=user, in_hours=-1)
    stale = Campaign.objects.get(pk=campaign.pk)  # as the admin read it when the form opened
    assert dispatch.campaign_claim(campaign_id=campaign.pk)

    refused = services.campaign_update(
        campaign=stale, changes={"name": "Renamed", "agent": AgentFactory(user=user), "send_immediately": True}
    )

    assert refused == ["agent", "send_immediately"]
    campaign.refresh_from_db()
    assert campaign.name == "Renamed" and campaign.agent_id == stale.agent_id
    assert campaign.status == Campaign.Status.PENDING and campaign.dispatch_claimed_at is not None
    assert not campaign.send_immediately


def called_and_uncalled(user):
    called = CampaignFactory(user=user, name="Called", status=Campaign.Status.COMPLETED)
    CallFactory(recipient=RecipientFactory(campaign=called))
    uncalled = scheduled("Never called", user=user, recipients_count=3)
    for n in range(3):
        RecipientFactory(campaign=uncalled, phone_number=f"+1212555020{n}")
    CampaignBatch.objects.create(campaign=uncalled, part=1, offset=0, size=3, token="t_uncalled")
    return called, uncalled


@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_a_campaign_with_calls_is_never_deleted_from_its_page(client, user, role):
    called, _ = called_and_uncalled(user)
    sign_in(client, user, role)
    change = reverse("admin:campaigns_campaign_change", args=[called.pk])
    delete = reverse("admin:campaigns_campaign_delete", args=[called.pk])

    page = client.get(change).content.decode()
    asked = client.get(delete, follow=True)
    confirmed = client.post(delete, {"post": "yes"}, follow=True)

    assert delete not in page  # no Delete link
    for response in (asked, confirmed):
        assert response.redirect_chain == [(change, 302)]
        assert shown(response) == ["“Called” cannot be deleted: it has placed calls, and their record is kept."]
    assert Campaign.objects.filter(pk=called.pk).exists()
    assert Call.objects.filter(campaign=called).count() == 1


@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_a_campaign_that_never_called_anyone_is_deleted_with_its_recipients(client, user, role):
    _, uncalled = called_and_uncalled(user)
    sign_in(client, user, role)
    delete = reverse("admin:campaigns_campaign_delete", args=[uncalled.pk])

    confirmation = client.get(delete)
    response = client.post(delete, {"post": "yes"})

    assert confirmation.status_code == 200
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", confirmation.content.decode())))
    assert "Campaign: Never called 3 recipients and its batches" in text
    assert "Campaigns: 1 Recipients: 3" in text
    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=uncalled.pk).exists()
    assert not Recipient.objects.filter(campaign_id=uncalled.pk).exists()
    assert not CampaignBatch.objects.filter(campaign_id=uncalled.pk).exists()


@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_deleting_selected_campaigns_deletes_those_that_never_called_and_names_the_others(client, user, role):
    called, uncalled = called_and_uncalled(user)
    calling = CampaignFactory(user=user, name="Calling", status=Campaign.Status.IN_PROGRESS)
    sign_in(client, user, role)
    changelist = reverse("admin:campaigns_campaign_changelist")
    selected = {"action": "delete_selected", "_selected_action": [called.pk, uncalled.pk, calling.pk]}

    confirmation = client.post(changelist, selected)
    page = confirmation.content.decode()
    done = client.post(changelist, {**selected, "post": "yes"}, follow=True)

    assert confirmation.status_code == 200 and "Never called" in page
    assert page.count('name="_selected_action"') == 1
    assert sorted(shown(confirmation)[0].splitlines()) == sorted(
        [
            "Skipped 2 campaigns:",
            "“Called”: it has placed calls, and their record is kept.",
            "“Calling”: it is being sent or is calling; cancel it first.",
        ]
    )
    assert "Successfully deleted 1 campaign." in shown(done)
    assert set(Campaign.objects.values_list("name", flat=True)) == {"Called", "Calling"}


def test_a_campaign_that_ended_without_calling_anyone_can_be_deleted(user):
    ended = [
        CampaignFactory(user=user, name="Cancelled before sending", status=Campaign.Status.CANCELLED),
        CampaignFactory(user=user, name="Refused by ElevenLabs", status=Campaign.Status.FAILED),
    ]

    for campaign in ended:
        assert selectors.campaign_delete_refusal(campaign=campaign) == ""
        services.campaign_delete(campaign=campaign)

    assert not Campaign.objects.filter(user=user).exists()


def test_recipients_are_deleted_a_chunk_at_a_time(user, monkeypatch):
    monkeypatch.setattr(services, "RECIPIENTS_DELETED_AT_ONCE", 3)
    campaign = CampaignFactory(user=user)
    for n in range(7):
        RecipientFactory(campaign=campaign, phone_number=f"+1212555030{n}")
    kept = RecipientFactory(phone_number="+12125550399")

    with CaptureQueriesContext(connection) as queries:
        services.campaign_delete(campaign=campaign)

    assert list(Recipient.objects.values_list("pk", flat=True)) == [kept.pk]
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE") and Recipient._meta.db_table in q["sql"]]
    assert len(deletes) == 3


@pytest.mark.parametrize("role", ["superuser", "staff"])
def test_recipients_and_calls_are_only_looked_at(client, user, role):
    campaign = CampaignFactory(user=user)
    recipient = RecipientFactory(campaign=campaign, phone_number="+12125550100", line=2)
    call = CallFactory(recipient=recipient)
    sign_in(client, user, role)
    recipient_page = reverse("admin:campaigns_recipient_change", args=[recipient.pk])

    page = client.get(recipient_page).content.decode()
    listing = client.get(reverse("admin:campaigns_recipient_changelist")).content.decode()
    edited = client.post(recipient_page, {"phone_number": "+14155550123", "line": "9", "campaign": campaign.pk})
    ticked = client.post(
        reverse("admin:campaigns_recipient_changelist"),
        {"action": "delete_selected", "_selected_action": [recipient.pk], "post": "yes"},
    )

    assert "+12125550100" in page and 'name="phone_number"' not in page and 'name="_save"' not in page
    assert 'name="_selected_action"' not in listing
    assert edited.status_code == 403 and ticked.status_code in (200, 302)
    for model, row in (("recipient", recipient), ("call", call)):
        assert client.get(reverse(f"admin:campaigns_{model}_add")).status_code == 403
        assert client.get(reverse(f"admin:campaigns_{model}_delete", args=[row.pk])).status_code == 403
        deleted = client.post(reverse(f"admin:campaigns_{model}_delete", args=[row.pk]), {"post": "yes"})
        assert deleted.status_code == 403
    recipient.refresh_from_db()
    assert (recipient.phone_number, recipient.line) == ("+12125550100", 2)
    assert Call.objects.filter(pk=call.pk).exists()
