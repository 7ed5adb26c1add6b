import pytest
from elevenlabs.types import BatchCallDetailedResponse, BatchCallResponse, WorkspaceBatchCallsResponse

from .sdk import assert_documented

pytestmark = [pytest.mark.django_db]

BATCHES = "/v1/convai/batch-calling"


def recipients_by_number(batch: dict) -> dict:
    return {recipient["phone_number"]: recipient for recipient in batch["recipients"]}


def test_the_sdk_oracle_refuses_a_field_elevenlabs_does_not_document(api):
    batch = api.submit()
    batch["telephony_call_config"]["made_up"] = True

    with pytest.raises(AssertionError, match=r"BatchCallResponse\.telephony_call_config\.made_up"):
        assert_documented(BatchCallResponse, batch)


def test_an_immediate_batch_answers_its_submit_already_calling(api, clock):
    batch = api.submit(
        numbers=["+14155550123", "+14155550124"],
        call_name="April reminders",
        timezone="Europe/Madrid",
        telephony_call_config={"ringing_timeout_secs": 45},
    )

    assert_documented(BatchCallResponse, batch)
    assert batch["id"].startswith("btcal_")
    assert batch["name"] == "April reminders"
    # The answer shows the batch as it stands: its first call went out as it was stored.
    assert batch["status"] == "in_progress"
    assert batch["agent_id"] == "agent_demo_reminders"
    assert batch["agent_name"] == "Appointment reminders (demo)"
    assert batch["phone_number_id"] == "phnum_demo_main"
    assert batch["phone_provider"] == "twilio"
    assert batch["created_at_unix"] == batch["scheduled_time_unix"] == int(clock.now)
    assert batch["timezone"] == "Europe/Madrid"
    assert batch["telephony_call_config"]["ringing_timeout_secs"] == 45
    assert (batch["total_calls_scheduled"], batch["total_calls_dispatched"], batch["total_calls_finished"]) == (2, 1, 0)
    assert batch["retry_count"] == 0


def test_a_batch_for_later_answers_its_submit_pending(api, clock):
    batch = api.submit(numbers=["+14155550123"], scheduled_time_unix=int(clock.now) + 60)

    assert_documented(BatchCallResponse, batch)
    assert batch["status"] == "pending"
    assert batch["total_calls_dispatched"] == 0


def test_a_small_batch_read_late_goes_from_pending_straight_to_completed(api, clock):
    created = api.submit(numbers=["+14155550123"], scheduled_time_unix=int(clock.now) + 60)

    clock.advance(3600)
    batch = api.batch(created["id"])

    assert (created["status"], batch["status"]) == ("pending", "completed")
    assert batch["recipients"][0]["status"] == "completed"


def test_a_batch_placed_from_a_sip_trunk_names_its_provider(api):
    batch = api.submit(agent_phone_number_id="phnum_demo_sip")

    assert_documented(BatchCallResponse, batch)
    assert (batch["phone_number_id"], batch["phone_provider"]) == ("phnum_demo_sip", "sip_trunk")


def test_the_detailed_batch_lists_every_recipient_with_its_client_data(api):
    client_data = {"dynamic_variables": {"first_name": "Ana", "balance": 12.5}, "user_id": "contact-42"}
    created = api.submit(
        recipients=[
            {"id": "contact-42", "phone_number": "+14155550123", "conversation_initiation_client_data": client_data},
            {"phone_number": "+14155550124"},
        ]
    )

    batch = api.batch(created["id"])

    assert_documented(BatchCallDetailedResponse, batch)
    first, second = batch["recipients"]
    assert first["id"].startswith("rcpt_")
    assert first["phone_number"] == "+14155550123"
    assert first["status"] == "dispatched"  # the first call goes out as the batch starts
    assert first["conversation_initiation_client_data"] == client_data
    assert first["conversation_id"] is None
    assert second["phone_number"] == "+14155550124"
    assert second["status"] == "pending"
    assert second["conversation_initiation_client_data"] is None


def test_recipients_move_through_every_status_as_time_passes(api, clock):
    created = api.submit(numbers=["+14155550123"])
    started = clock.now

    seen = []
    for offset in (0.1, 2.1, 4.1, 6.1):
        clock.now = started + offset
        batch = api.batch(created["id"])
        assert_documented(BatchCallDetailedResponse, batch)
        (recipient,) = batch["recipients"]
        seen.append((batch["status"], recipient["status"], recipient["conversation_id"] is not None))

    assert seen == [
        ("in_progress", "dispatched", False),
        ("in_progress", "initiated", True),
        ("in_progress", "in_progress", True),
        ("completed", "completed", True),
    ]


@pytest.mark.parametrize("number", ["+14155550120", "+14155550126", "+14155550127"])
def test_every_call_has_its_conversation_id_from_initiated_on_answered_or_not(api, clock, number):
    created = api.submit(numbers=[number])
    started = clock.now

    seen = []
    for offset in (0.1, 2.1, 4.1, 60):
        clock.now = started + offset
        (recipient,) = api.batch(created["id"])["recipients"]
        seen.append((recipient["status"], recipient["conversation_id"]))

    assert seen[0] == ("dispatched", None)
    assert seen[1][0] == "initiated"
    assert seen[1][1].startswith("conv_")
    assert {conversation_id for _, conversation_id in seen[1:]} == {seen[1][1]}


def test_calls_are_dispatched_one_spacing_apart(api, clock, settings):
    settings.SANDBOX_CALL_SPACING_SECONDS = 1.0
    created = api.submit(numbers=[f"+1415555010{i}" for i in range(4)])

    clock.advance(1.5)
    batch = api.batch(created["id"])

    assert [recipient["status"] for recipient in batch["recipients"]] == [
        "dispatched",
        "dispatched",
        "pending",
        "pending",
    ]
    assert (batch["total_calls_dispatched"], batch["total_calls_scheduled"], batch["total_calls_finished"]) == (2, 4, 0)


def test_the_last_digit_of_the_number_decides_how_the_call_ends(api, clock):
    numbers = [f"+1415555012{digit}" for digit in range(10)]
    created = api.submit(numbers=numbers)

    clock.advance(60)
    batch = api.batch(created["id"])

    assert_documented(BatchCallDetailedResponse, batch)
    outcome = {
        number[-1]: (r["status"], r["conversation_id"] is not None) for number, r in recipients_by_number(batch).items()
    }
    # ElevenLabs creates a conversation for every call it places, answered or not.
    assert outcome == {
        **{digit: ("completed", True) for digit in "012345"},
        "6": ("failed", True),
        "7": ("failed", True),
        "8": ("voicemail", True),
        "9": ("completed", True),
    }
    assert batch["status"] == "completed"
    assert (batch["total_calls_dispatched"], batch["total_calls_scheduled"], batch["total_calls_finished"]) == (
        10,
        10,
        10,
    )
    conversation_ids = [r["conversation_id"] for r in batch["recipients"] if r["conversation_id"]]
    assert all(conversation_id.startswith("conv_") for conversation_id in conversation_ids)
    assert len(set(conversation_ids)) == len(conversation_ids)


def test_a_batch_scheduled_in_the_future_stays_pending_until_then(api, clock):
    scheduled = int(clock.now) + 3600
    created = api.submit(numbers=["+14155550123", "+14155550124"], scheduled_time_unix=scheduled)

    clock.advance(3599)
    waiting = api.batch(created["id"])
    clock.now = scheduled + 0.1
    started = api.batch(created["id"])

    assert created["scheduled_time_unix"] == scheduled
    assert waiting["status"] == "pending"
    assert {recipient["status"] for recipient in waiting["recipients"]} == {"pending"}
    assert waiting["total_calls_dispatched"] == 0
    assert started["status"] == "in_progress"
    assert [recipient["status"] for recipient in started["recipients"]] == ["dispatched", "pending"]


def test_a_scheduled_time_in_the_past_starts_the_batch_at_once(api, clock):
    created = api.submit(scheduled_time_unix=int(clock.now) - 3600)

    clock.advance(0.1)

    assert api.batch(created["id"])["recipients"][0]["status"] == "dispatched"


def test_the_workspace_list_pages_newest_first_with_next_doc(api, clock):
    ids = []
    for index in range(5):
        ids.append(api.submit(call_name=f"Batch {index}")["id"])
        clock.advance(1)

    pages = []
    params = {"limit": 2}
    while True:
        response = api.get(f"{BATCHES}/workspace", params)
        assert response.status_code == 200
        page = response.json()
        assert_documented(WorkspaceBatchCallsResponse, page)
        pages.append(page)
        if not page["has_more"]:
            break
        params = {"limit": 2, "last_doc": page["next_doc"]}

    assert [[batch["id"] for batch in page["batch_calls"]] for page in pages] == [
        [ids[4], ids[3]],
        [ids[2], ids[1]],
        [ids[0]],
    ]
    assert [page["next_doc"] for page in pages] == [ids[3], ids[1], None]
    assert [page["has_more"] for page in pages] == [True, True, False]


def test_the_workspace_list_defaults_to_100_per_page(api):
    for _ in range(3):
        api.submit()

    page = api.get(f"{BATCHES}/workspace").json()

    assert len(page["batch_calls"]) == 3
    assert page["has_more"] is False
    assert page["next_doc"] is None


def test_batches_submitted_in_the_same_second_page_without_gaps_or_repeats(api):
    ids = {api.submit()["id"] for _ in range(5)}

    first = api.get(f"{BATCHES}/workspace", {"limit": 3}).json()
    second = api.get(f"{BATCHES}/workspace", {"limit": 3, "last_doc": first["next_doc"]}).json()

    listed = [batch["id"] for batch in first["batch_calls"] + second["batch_calls"]]
    assert sorted(listed) == sorted(ids)


def test_the_workspace_list_filters_by_agent(api):
    survey = api.submit(agent_id="agent_demo_survey", agent_phone_number_id="phnum_demo_eu")
    api.submit(agent_id="agent_demo_reminders")

    page = api.get(f"{BATCHES}/workspace", {"agent_id": "agent_demo_survey"}).json()

    assert [batch["id"] for batch in page["batch_calls"]] == [survey["id"]]
    assert page["batch_calls"][0]["agent_name"] == "Customer survey (demo)"


def test_the_workspace_list_shows_each_batch_as_it_stands_now(api, clock):
    created = api.submit(numbers=["+14155550123"])
    clock.advance(60)

    (batch,) = api.get(f"{BATCHES}/workspace").json()["batch_calls"]

    assert batch["id"] == created["id"]
    assert batch["status"] == "completed"
    assert batch["total_calls_finished"] == 1


def test_an_unknown_last_doc_is_not_found(api):
    response = api.get(f"{BATCHES}/workspace", {"last_doc": "btcal_missing"})

    assert response.status_code == 404
    assert response.json() == {"detail": {"status": "not_found", "message": "Batch call btcal_missing not found"}}


def test_an_unknown_agent_is_not_found(api):
    response = api.post(
        f"{BATCHES}/submit",
        {"call_name": "x", "agent_id": "agent_x", "recipients": [{"phone_number": "+14155550123"}]},
    )

    assert response.status_code == 404
    assert response.json() == {"detail": {"status": "not_found", "message": "Agent agent_x not found"}}


def test_an_unknown_phone_number_is_not_found(api):
    response = api.post(
        f"{BATCHES}/submit",
        {
            "call_name": "x",
            "agent_id": "agent_demo_reminders",
            "agent_phone_number_id": "phnum_x",
            "recipients": [{"phone_number": "+14155550123"}],
        },
    )

    assert response.status_code == 404
    assert response.json() == {"detail": {"status": "not_found", "message": "Phone number phnum_x not found"}}


def test_without_a_phone_number_the_agents_own_number_places_the_calls(api):
    batch = api.submit(agent_phone_number_id=None)

    assert batch["phone_number_id"] == "phnum_demo_main"


@pytest.mark.parametrize("method,suffix", [("get", ""), ("post", "/cancel"), ("post", "/retry"), ("delete", "")])
def test_an_unknown_batch_is_not_found(api, method, suffix):
    response = getattr(api, method)(f"{BATCHES}/btcal_missing{suffix}")

    assert response.status_code == 404
    assert response.json() == {"detail": {"status": "not_found", "message": "Batch call btcal_missing not found"}}


def test_cancelling_a_running_batch_cancels_every_unfinished_recipient(api, clock):
    created = api.submit(numbers=["+14155550120", "+14155550121", "+14155550122"])
    clock.advance(6.1)  # the first call has ended, the others are in progress

    response = api.post(f"{BATCHES}/{created['id']}/cancel")

    assert response.status_code == 200
    cancelled = response.json()
    assert_documented(BatchCallResponse, cancelled)
    assert cancelled["status"] == "cancelled"
    clock.advance(60)
    batch = api.batch(created["id"])
    assert batch["status"] == "cancelled"
    assert [recipient["status"] for recipient in batch["recipients"]] == ["completed", "cancelled", "cancelled"]
    assert (batch["total_calls_dispatched"], batch["total_calls_finished"]) == (3, 3)


def test_cancelling_a_batch_before_it_starts_dispatches_nothing(api, clock):
    created = api.submit(numbers=["+14155550120", "+14155550121"], scheduled_time_unix=int(clock.now) + 600)

    cancelled = api.post(f"{BATCHES}/{created['id']}/cancel").json()
    clock.advance(3600)
    batch = api.batch(created["id"])

    assert cancelled["status"] == "cancelled"
    assert {recipient["status"] for recipient in batch["recipients"]} == {"cancelled"}
    assert (batch["total_calls_dispatched"], batch["total_calls_finished"]) == (0, 0)


@pytest.mark.parametrize("finish", ["complete", "cancel"])
def test_a_finished_batch_cannot_be_cancelled(api, clock, finish):
    created = api.submit()
    if finish == "cancel":
        api.post(f"{BATCHES}/{created['id']}/cancel")
    else:
        clock.advance(60)

    response = api.post(f"{BATCHES}/{created['id']}/cancel")

    assert response.status_code == 400
    assert response.json()["detail"]["status"] == "invalid_state"
    assert created["id"] in response.json()["detail"]["message"]


def test_retrying_calls_failed_and_voicemail_recipients_again(api, clock):
    created = api.submit(numbers=["+14155550120", "+14155550126", "+14155550127", "+14155550128"])
    clock.advance(60)
    before = recipients_by_number(api.batch(created["id"]))

    response = api.post(f"{BATCHES}/{created['id']}/retry")

    assert response.status_code == 200
    retried = response.json()
    assert_documented(BatchCallResponse, retried)
    assert retried["retry_count"] == 1
    assert retried["status"] == "in_progress"
    requeued = recipients_by_number(api.batch(created["id"]))
    # The new round starts at once, in the original order and spacing.
    assert [requeued[f"+1415555012{digit}"]["status"] for digit in "0678"] == [
        "completed",
        "dispatched",
        "pending",
        "pending",
    ]

    clock.advance(60)
    after = api.batch(created["id"])
    assert_documented(BatchCallDetailedResponse, after)
    ended = recipients_by_number(after)
    assert after["status"] == "completed"
    assert after["retry_count"] == 1
    assert [ended[f"+1415555012{digit}"]["status"] for digit in "0678"] == [
        "completed",
        "completed",
        "completed",
        "voicemail",
    ]
    assert ended["+14155550126"]["conversation_id"].startswith("conv_")
    assert ended["+14155550128"]["conversation_id"] != before["+14155550128"]["conversation_id"]
    assert ended["+14155550120"] == before["+14155550120"]


def test_a_retry_starts_calling_at_once(api, clock):
    created = api.submit(numbers=["+14155550120", "+14155550121", "+14155550126"])
    clock.advance(60)
    api.post(f"{BATCHES}/{created['id']}/retry")

    clock.advance(0.1)

    assert recipients_by_number(api.batch(created["id"]))["+14155550126"]["status"] == "dispatched"


def test_a_running_batch_cannot_be_retried(api, clock):
    created = api.submit(numbers=["+14155550126"])
    clock.advance(1)

    response = api.post(f"{BATCHES}/{created['id']}/retry")

    assert response.status_code == 400
    assert response.json()["detail"]["status"] == "invalid_state"


def test_a_batch_with_nothing_to_retry_cannot_be_retried(api, clock):
    created = api.submit(numbers=["+14155550120"])
    clock.advance(60)

    response = api.post(f"{BATCHES}/{created['id']}/retry")

    assert response.status_code == 400
    assert response.json() == {
        "detail": {
            "status": "invalid_state",
            "message": f"Batch call {created['id']} has no failed or unanswered recipients to retry",
        }
    }


def test_deleting_a_batch_answers_200_with_no_body_and_forgets_it(api):
    created = api.submit()

    response = api.delete(f"{BATCHES}/{created['id']}")

    assert response.status_code == 200
    assert response.content == b""
    assert api.get(f"{BATCHES}/{created['id']}").status_code == 404
    assert api.get(f"{BATCHES}/workspace").json()["batch_calls"] == []
