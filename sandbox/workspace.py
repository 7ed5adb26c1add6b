"""The sandbox's demo workspace: its agents and phone numbers.

Fixed data rather than database rows: the sandbox answers for one workspace whose agents and
numbers never change. Every dict uses ElevenLabs' field names, exactly as the list endpoints
return them (`AgentSummaryResponseModel`, the Twilio variant of a phone-number list item).
"""

SANDBOX_CREATOR = {
    "is_creator": True,
    "creator_name": "Sandbox Workspace",
    "creator_email": "sandbox@example.com",
    "role": "admin",
}

AGENTS = [
    {
        "agent_id": "agent_demo_reminders",
        "name": "Appointment reminders (demo)",
        "voice_id": "21m00Tcm4TlvDq8ikWAM",
        "tags": ["demo", "reminders"],
        "created_at_unix_secs": 1767225600,
        "updated_at_unix_secs": 1767225600,
        "access_info": SANDBOX_CREATOR,
        "last_call_time_unix_secs": None,
        "archived": False,
    },
    {
        "agent_id": "agent_demo_survey",
        "name": "Customer survey (demo)",
        "voice_id": "EXAVITQu4vr4xnSDxMaL",
        "tags": ["demo", "survey"],
        "created_at_unix_secs": 1767312000,
        "updated_at_unix_secs": 1767312000,
        "access_info": SANDBOX_CREATOR,
        "last_call_time_unix_secs": None,
        "archived": False,
    },
    {
        "agent_id": "agent_demo_collections",
        "name": "Payment follow-up (demo)",
        "voice_id": "pNInz6obpgDQGcFmaJgB",
        "tags": ["demo", "collections"],
        "created_at_unix_secs": 1767398400,
        "updated_at_unix_secs": 1767398400,
        "access_info": SANDBOX_CREATOR,
        "last_call_time_unix_secs": None,
        "archived": False,
    },
]

# What `GET /v1/convai/agents/{agent_id}` adds to the summary.
AGENT_CONVERSATION_CONFIGS = {
    "agent_demo_reminders": {
        "first_message": "Hi {{first_name}}, this is a reminder about your appointment.",
        "prompt": "You remind people of their upcoming appointment and offer to reschedule it.",
    },
    "agent_demo_survey": {
        "first_message": "Hi {{first_name}}, do you have two minutes for a short survey?",
        "prompt": "You run a three-question customer satisfaction survey.",
    },
    "agent_demo_collections": {
        "first_message": "Hi {{first_name}}, I'm calling about an open balance on your account.",
        "prompt": "You politely remind customers of an overdue payment and offer a payment plan.",
    },
}

# `platform_settings.overrides` of each agent (`GET /v1/convai/agents/{agent_id}`): which parts
# of `conversation_config_override` a call may set. ElevenLabs refuses a call that sets one
# the agent does not allow ("set to be overridable in the agent's security settings").
AGENT_OVERRIDES = {
    "agent_demo_reminders": {
        "conversation_config_override": {
            "agent": {"first_message": True, "language": True, "prompt": {"prompt": True}},
            "tts": {"voice_id": True},
        },
        "custom_llm_extra_body": False,
        "enable_conversation_initiation_client_data_from_webhook": False,
    },
    "agent_demo_survey": {
        "conversation_config_override": {
            "agent": {"first_message": True, "language": True, "prompt": {"prompt": False}},
            "tts": {"voice_id": False},
        },
        "custom_llm_extra_body": False,
        "enable_conversation_initiation_client_data_from_webhook": False,
    },
    "agent_demo_collections": {
        "conversation_config_override": {
            "agent": {"first_message": False, "language": False, "prompt": {"prompt": False}},
            "tts": {"voice_id": False},
        },
        "custom_llm_extra_body": False,
        "enable_conversation_initiation_client_data_from_webhook": False,
    },
}

PHONE_NUMBERS = [
    {
        "provider": "twilio",
        "phone_number": "+14155550100",
        "label": "Demo line",
        "supports_inbound": True,
        "supports_outbound": True,
        "phone_number_id": "phnum_demo_main",
        "assigned_agent": {"agent_id": "agent_demo_reminders", "agent_name": "Appointment reminders (demo)"},
    },
    {
        "provider": "twilio",
        "phone_number": "+442079460000",
        "label": "Demo UK line",
        "supports_inbound": True,
        "supports_outbound": True,
        "phone_number_id": "phnum_demo_eu",
        "assigned_agent": None,
    },
    {
        "provider": "sip_trunk",
        "phone_number": "+13125550100",
        "label": "Demo SIP trunk",
        "supports_inbound": True,
        "supports_outbound": True,
        "phone_number_id": "phnum_demo_sip",
        "assigned_agent": None,
        "provider_config": None,
        "outbound_trunk": None,
        "inbound_trunk": None,
        "livekit_stack": "standard",
        "store_sip_messages": False,
    },
    {
        # Takes calls but cannot place them: not offered for campaigns.
        "provider": "twilio",
        "phone_number": "+14155550199",
        "label": "Demo inbound-only line",
        "supports_inbound": True,
        "supports_outbound": False,
        "phone_number_id": "phnum_demo_inbound",
        "assigned_agent": None,
    },
]


# The workspace's outbound-campaign configuration (`GET /v1/convai/outbound-campaigns/config`):
# the policy a campaign takes for every section its submit leaves out.
CAMPAIGN_POLICY = {
    "timezone": "UTC",
    "retry": {
        "retry_delay_seconds": 3600,
        "max_short_retries": 2,
        "max_total_calls": 3,
        "max_callbacks": 2,
        "max_redirects": 2,
        "interval_placement": "start",
        "rotate_step_seconds": 900,
        "max_consecutive_failures_per_number": None,
    },
    # Every day, all day: a campaign submitted without windows calls at once.
    "calling_periods": [{"weekdays": [0, 1, 2, 3, 4, 5, 6], "intervals": [{"start": "00:00", "end": "24:00"}]}],
    # The built-in data collection items, by the names the sandbox gives them.
    "data_collection": {
        "callback_time": "callback_time",
        "redirect_phone_number": "redirect_phone_number",
        "stop": "do_not_call",
        "mappings": {},
    },
    "followup_context": {
        "call_type": True,
        "previous_conversation_id": False,
        "previous_summary": False,
        "previous_transcript": False,
    },
}


def agent_find(agent_id: str) -> dict | None:
    return next((agent for agent in AGENTS if agent["agent_id"] == agent_id), None)


def phone_number_find(phone_number_id: str) -> dict | None:
    return next((number for number in PHONE_NUMBERS if number["phone_number_id"] == phone_number_id), None)
