import pytest

from sandbox.models import SandboxCampaign

from .clients import API_KEY, CAMPAIGNS, CampaignClient, campaign_body

pytestmark = [pytest.mark.django_db]

SUBMIT = f"{CAMPAIGNS}/submit"


@pytest.fixture
def api(db, clock):
    return CampaignClient()


def errors_of(response) -> list[tuple]:
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    for entry in detail:
        assert {"type", "loc", "msg", "input"} <= set(entry)
    return [(entry["type"], tuple(entry["loc"])) for entry in detail]


def with_policy(**policy) -> dict:
    return campaign_body(policy=policy)


def period(start="09:00", end="17:00", weekdays=(0, 1, 2, 3, 4)) -> dict:
    return {"weekdays": list(weekdays), "intervals": [{"start": start, "end": end}]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {},
            [
                ("missing", ("body", "call_name")),
                ("missing", ("body", "agent_id")),
                ("missing", ("body", "recipients")),
                ("missing", ("body", "channel_config")),
            ],
        ),
        (campaign_body(recipients=[]), [("too_short", ("body", "recipients"))]),
        (
            campaign_body(recipients=[{"phone_number": "555-0100"}]),
            [("string_pattern_mismatch", ("body", "recipients", 0, "phone_number"))],
        ),
        (campaign_body(recipients=[{"id": "r1"}]), [("missing", ("body", "recipients", 0, "phone_number"))]),
        (
            campaign_body(recipients=[{"phone_number": "+14155550100", "phone_numbers": ["nope"]}]),
            [("string_pattern_mismatch", ("body", "recipients", 0, "phone_numbers", 0))],
        ),
        (
            campaign_body(channel_config={"agent_phone_number_id": "x"}),
            [("union_tag_not_found", ("body", "channel_config"))],
        ),
        (
            campaign_body(channel_config={"channel": "fax", "agent_phone_number_id": "x"}),
            [("union_tag_invalid", ("body", "channel_config"))],
        ),
        (
            campaign_body(channel_config={"channel": "phone"}),
            [("missing", ("body", "channel_config", "phone", "agent_phone_number_id"))],
        ),
        (campaign_body(variant="premium"), [("enum", ("body", "variant"))]),
        (campaign_body(target_concurrency_limit=0), [("greater_than_equal", ("body", "target_concurrency_limit"))]),
        (campaign_body(timezone="Mars/Olympus"), [("value_error", ("body", "timezone"))]),
        (campaign_body(variant="simple", policy={"retry": {"max_total_calls": 2}}), [("value_error", ("body",))]),
        (with_policy(timezone="Nowhere/Town"), [("value_error", ("body", "policy", "timezone"))]),
        (
            with_policy(calling_periods=[period(start="25:00")]),
            [("string_pattern_mismatch", ("body", "policy", "calling_periods", 0, "intervals", 0, "start"))],
        ),
        (
            with_policy(calling_periods=[period(start="17:00", end="09:00")]),
            [("value_error", ("body", "policy", "calling_periods", 0, "intervals", 0))],
        ),
        (
            with_policy(calling_periods=[period(weekdays=[7])]),
            [("less_than_equal", ("body", "policy", "calling_periods", 0, "weekdays", 0))],
        ),
        (
            with_policy(calling_periods=[period(), period(start="16:00", end="18:00", weekdays=[4])]),
            [("value_error", ("body", "policy", "calling_periods"))],
        ),
        (
            with_policy(calling_periods=[{"weekdays": [0]}]),
            [("missing", ("body", "policy", "calling_periods", 0, "intervals"))],
        ),
        (
            with_policy(retry={"max_total_calls": 0, "retry_delay_seconds": "soon"}),
            [
                ("int_parsing", ("body", "policy", "retry", "retry_delay_seconds")),
                ("greater_than_equal", ("body", "policy", "retry", "max_total_calls")),
            ],
        ),
        (
            with_policy(retry={"interval_placement": "late"}),
            [("enum", ("body", "policy", "retry", "interval_placement"))],
        ),
        (with_policy(data_collection={"stop": 5}), [("string_type", ("body", "policy", "data_collection", "stop"))]),
    ],
)
def test_a_malformed_submit_answers_422_and_stores_nothing(api, body, expected):
    assert errors_of(api.post(SUBMIT, body)) == expected
    assert SandboxCampaign.objects.count() == 0


def test_windows_ending_at_midnight_and_back_to_back_are_accepted(api):
    answer = api.submit_campaign(
        policy={"calling_periods": [period("00:00", "09:00", range(7)), period("09:00", "24:00", range(7))]}
    )

    assert answer["campaign"]["policy"]["calling_periods"][1]["intervals"] == [{"start": "09:00", "end": "24:00"}]


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("", {"page_size": 101}, [("less_than_equal", ("query", "page_size"))]),
        ("", {"status": ["active", "sleeping"]}, [("enum", ("query", "status", 1))]),
        ("/{id}/leads", {"status": "done"}, [("enum", ("query", "status"))]),
        ("/{id}/leads", {"disposition": "gone"}, [("enum", ("query", "disposition", 0))]),
        ("/{id}/calls", {"call_result": "hung_up"}, [("enum", ("query", "call_result", 0))]),
        ("/{id}/calls", {"page_size": 0}, [("greater_than_equal", ("query", "page_size"))]),
    ],
)
def test_a_malformed_query_answers_422(api, path, params, expected):
    campaign_id = api.submit_campaign()["campaign"]["campaign_id"]

    assert errors_of(api.get(CAMPAIGNS + path.format(id=campaign_id), params)) == expected


def test_an_unknown_agent_or_number_is_not_found(api):
    unknown_agent = api.post(SUBMIT, campaign_body(agent_id="agent_nope"))
    unknown_number = api.post(
        SUBMIT, campaign_body(channel_config={"channel": "phone", "agent_phone_number_id": "phnum_nope"})
    )

    assert unknown_agent.status_code == unknown_number.status_code == 404
    assert unknown_agent.json()["detail"]["status"] == "not_found"
    assert SandboxCampaign.objects.count() == 0


def test_an_override_the_agent_locks_is_refused(api):
    body = campaign_body(
        agent_id="agent_demo_collections",
        recipients=[
            {
                "phone_number": "+14155550100",
                "conversation_initiation_client_data": {"conversation_config_override": {"tts": {"voice_id": "v"}}},
            }
        ],
    )

    answer = api.post(SUBMIT, body)

    assert answer.status_code == 400
    assert answer.json()["detail"]["status"] == "override_not_allowed"


def test_a_wrong_key_answers_401_on_every_campaign_endpoint(db, clock):
    campaign_id = CampaignClient().submit_campaign()["campaign"]["campaign_id"]
    intruder = CampaignClient(api_key=API_KEY + "x")

    answers = [
        intruder.post(SUBMIT, campaign_body()),
        intruder.get(CAMPAIGNS),
        intruder.get(f"{CAMPAIGNS}/{campaign_id}"),
        intruder.get(f"{CAMPAIGNS}/{campaign_id}/progress"),
        intruder.get(f"{CAMPAIGNS}/{campaign_id}/leads"),
        intruder.get(f"{CAMPAIGNS}/{campaign_id}/calls"),
        intruder.post(f"{CAMPAIGNS}/{campaign_id}/stop"),
        intruder.delete(f"{CAMPAIGNS}/{campaign_id}/leads/lead_x"),
    ]

    assert {answer.status_code for answer in answers} == {401}
    assert answers[0].json() == {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
    assert SandboxCampaign.objects.count() == 1


def test_a_wrong_method_answers_405(api):
    campaign_id = api.submit_campaign()["campaign"]["campaign_id"]

    answer = api.delete(f"{CAMPAIGNS}/{campaign_id}")

    assert answer.status_code == 405
    assert answer.json() == {"detail": "Method Not Allowed"}
