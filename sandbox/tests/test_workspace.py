import pytest
from elevenlabs.conversational_ai.phone_numbers.types.phone_numbers_list_response_item import (
    PhoneNumbersListResponseItem_SipTrunk,
    PhoneNumbersListResponseItem_Twilio,
)
from elevenlabs.types import GetAgentResponseModel, GetAgentsPageResponseModel

from sandbox import workspace

from .sdk import assert_documented

pytestmark = [pytest.mark.django_db]

PHONE_NUMBER_MODELS = {
    "twilio": PhoneNumbersListResponseItem_Twilio,
    "sip_trunk": PhoneNumbersListResponseItem_SipTrunk,
}


def test_agents_come_in_cursor_pages(api):
    pages = []
    params = {"page_size": 2}
    while True:
        response = api.get("/v1/convai/agents", params)
        assert response.status_code == 200
        page = response.json()
        assert_documented(GetAgentsPageResponseModel, page)
        pages.append(page)
        if not page["has_more"]:
            break
        params = {"page_size": 2, "cursor": page["next_cursor"]}

    assert [len(page["agents"]) for page in pages] == [2, 1]
    assert pages[0]["next_cursor"]
    assert pages[1]["next_cursor"] is None
    listed = [agent["agent_id"] for page in pages for agent in page["agents"]]
    assert sorted(listed) == sorted(agent["agent_id"] for agent in workspace.AGENTS)


def test_agents_are_newest_first_by_default_and_30_to_a_page(api):
    page = api.get("/v1/convai/agents").json()

    assert [agent["agent_id"] for agent in page["agents"]] == [
        "agent_demo_collections",
        "agent_demo_survey",
        "agent_demo_reminders",
    ]
    assert page["has_more"] is False


def test_agents_can_be_searched_by_name(api):
    page = api.get("/v1/convai/agents", {"search": "survey"}).json()

    assert [agent["name"] for agent in page["agents"]] == ["Customer survey (demo)"]


def test_an_unknown_agent_cursor_is_a_400(api):
    response = api.get("/v1/convai/agents", {"cursor": "nope"})

    assert response.status_code == 400
    assert response.json()["detail"]["status"] == "invalid_cursor"


def test_an_agent_is_returned_with_its_config_and_numbers(api):
    response = api.get("/v1/convai/agents/agent_demo_reminders")

    assert response.status_code == 200
    agent = GetAgentResponseModel.model_validate(response.json())
    assert agent.name == "Appointment reminders (demo)"
    assert [number.phone_number_id for number in agent.phone_numbers] == ["phnum_demo_main"]
    assert agent.conversation_config.tts.voice_id == workspace.AGENTS[0]["voice_id"]


@pytest.mark.parametrize(
    ("agent_id", "first_message", "language", "prompt", "voice_id"),
    [
        ("agent_demo_reminders", True, True, True, True),
        ("agent_demo_survey", True, True, False, False),
        ("agent_demo_collections", False, False, False, False),
    ],
)
def test_an_agent_says_which_overrides_a_call_may_set(api, agent_id, first_message, language, prompt, voice_id):
    response = api.get(f"/v1/convai/agents/{agent_id}")

    agent = GetAgentResponseModel.model_validate(response.json())
    allowed = agent.platform_settings.overrides.conversation_config_override
    assert (allowed.agent.first_message, allowed.agent.language) == (first_message, language)
    assert (allowed.agent.prompt.prompt, allowed.tts.voice_id) == (prompt, voice_id)
    assert response.json()["platform_settings"]["overrides"] == workspace.AGENT_OVERRIDES[agent_id]


def test_an_unknown_agent_is_not_found(api):
    response = api.get("/v1/convai/agents/agent_x")

    assert response.status_code == 404
    assert response.json() == {"detail": {"status": "not_found", "message": "Agent agent_x not found"}}


def test_phone_numbers_are_a_bare_array_each_shaped_for_its_provider(api):
    response = api.get("/v1/convai/phone-numbers")

    assert response.status_code == 200
    numbers = response.json()
    assert isinstance(numbers, list)
    parsed = [assert_documented(PHONE_NUMBER_MODELS[number["provider"]], number) for number in numbers]
    assert [(n.phone_number_id, n.phone_number, n.label, n.provider, n.supports_outbound) for n in parsed] == [
        ("phnum_demo_main", "+14155550100", "Demo line", "twilio", True),
        ("phnum_demo_eu", "+442079460000", "Demo UK line", "twilio", True),
        ("phnum_demo_sip", "+13125550100", "Demo SIP trunk", "sip_trunk", True),
        ("phnum_demo_inbound", "+14155550199", "Demo inbound-only line", "twilio", False),
    ]
    assert parsed[0].assigned_agent.agent_id == "agent_demo_reminders"
    assert parsed[1].assigned_agent is None
    assert parsed[2].livekit_stack == "standard"


def test_phone_numbers_filter_by_agent_and_provider(api):
    by_agent = api.get("/v1/convai/phone-numbers", {"agent_id": "agent_demo_reminders"}).json()
    sip = api.get("/v1/convai/phone-numbers", {"provider": "sip_trunk"}).json()

    assert [number["phone_number_id"] for number in by_agent] == ["phnum_demo_main"]
    assert [number["phone_number_id"] for number in sip] == ["phnum_demo_sip"]


def test_the_workspace_constants_carry_elevenlabs_field_names():
    assert [agent["agent_id"] for agent in workspace.AGENTS] == [
        "agent_demo_reminders",
        "agent_demo_survey",
        "agent_demo_collections",
    ]
    assert {number["phone_number_id"]: number["phone_number"] for number in workspace.PHONE_NUMBERS} == {
        "phnum_demo_main": "+14155550100",
        "phnum_demo_eu": "+442079460000",
        "phnum_demo_sip": "+13125550100",
        "phnum_demo_inbound": "+14155550199",
    }
