"""What a Schemathesis run needs to find in the database: one user with the key the run uses,
a second key it may revoke, and one of everything the API reads (agent, number, campaign,
recipient, call with its conversation, suppression, webhook endpoint, erasure)."""

import datetime as dt

from campaigns import services, suppressions
from campaigns.events.models import WebhookEndpoint
from campaigns.models import Erasure
from campaigns.tests.factories import (
    AgentFactory,
    CallFactory,
    CampaignFactory,
    PhoneNumberFactory,
    RecipientFactory,
    SuppressionFactory,
    UserFactory,
)

TRANSCRIPT = [
    {"role": "agent", "message": "Hi, this is Dana from Acme. Is now a good time?", "time_in_call_secs": 0},
    {"role": "user", "message": "Sure, go ahead.", "time_in_call_secs": 4},
]


def seed() -> dict[str, str]:
    """Create the data; answer the raw key the run sends and the ids its path parameters take
    (`api_key_id` is the second key's: revoking the one the run uses would end the run)."""
    user = UserFactory(username="conformance")
    key = services.api_key_create(user=user, name="conformance run")
    spare = services.api_key_create(user=user, name="revoked by the run")
    agent = AgentFactory(user=user, elevenlabs_agent_id="agent_conformance", name="Reminders")
    number = PhoneNumberFactory(user=user, phone_number="+14155550100")
    campaign = CampaignFactory(user=user, agent=agent, phone_number=number, name="Seeded campaign")
    recipient = RecipientFactory(campaign=campaign, phone_number="+12125550111", variables={"name": "Ada"})
    call = CallFactory(
        recipient=recipient,
        conversation_id="conv_conformance",
        status="completed",
        call_result="answered",
        call_successful="success",
        summary="Confirmed Tuesday.",
        transcript=TRANSCRIPT,
        duration_secs=42,
        started_at=dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.UTC),
    )
    SuppressionFactory(user=user, phone_number="+13125550122")
    # Straight into the table: adding one through the service resolves its host, and this
    # machine may have no DNS.
    endpoint = WebhookEndpoint.objects.create(
        user=user, url="https://hooks.example.com/voiceable", secret="whsec_c2VlZA=="
    )
    # What an earlier erasure of another number did.
    erasure = Erasure.objects.create(
        user=user,
        number_hash=suppressions.number_hash("+13125550199"),
        requested_by="API key conformance run",
        recipients_erased=1,
        campaigns_touched=1,
        conversations_not_deleted=[{"conversation_id": "conv_gone", "reason": "ElevenLabs answered 503"}],
        notes=["1 batch call at ElevenLabs still lists the number among its recipients."],
    )
    return {
        "api_key": key.raw_key,
        "api_key_id": spare.api_key.pk,
        "agent_id": agent.elevenlabs_agent_id,
        "campaign_id": campaign.pk,
        "recipient_id": recipient.pk,
        "conversation_id": call.conversation_id,
        "endpoint_id": endpoint.pk,
        "erasure_id": erasure.pk,
    }
