"""Every non-trivial read. All of them are scoped to the user who asks."""

from django.db.models import QuerySet

from campaigns.errors import NotFound
from campaigns.models import Agent, ApiKey, Campaign, PhoneNumber, Recipient


def campaign_list(*, user) -> QuerySet[Campaign]:
    """The user's campaigns, newest first, with what their API representation needs."""
    return Campaign.objects.filter(user=user).select_related("agent", "phone_number").order_by("-created_at", "-id")


def campaign_get(*, user, campaign_id) -> Campaign:
    try:
        return campaign_list(user=user).get(pk=int(campaign_id))
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Campaign not found: there is no campaign {campaign_id} in your account.") from None


def agent_get(*, user, agent_id: str) -> Agent:
    """One of the user's agents, by ElevenLabs agent id or by numeric local id."""
    agent_id = str(agent_id).strip()
    agents = Agent.objects.filter(user=user)
    agent = agents.filter(elevenlabs_agent_id=agent_id).first()
    if agent is None and agent_id.isdigit():
        agent = agents.filter(pk=int(agent_id)).first()
    if agent is None:
        raise NotFound(f"Agent not found: there is no agent '{agent_id}' in your account.")
    return agent


def agent_list(*, user) -> QuerySet[Agent]:
    return Agent.objects.filter(user=user).order_by("name", "id")


def phone_number_get(*, user, phone_number_id) -> PhoneNumber:
    try:
        return PhoneNumber.objects.get(user=user, pk=int(phone_number_id))
    except (PhoneNumber.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"Phone number not found: there is no phone number {phone_number_id} in your account.") from None


def phone_number_list(*, user) -> QuerySet[PhoneNumber]:
    return PhoneNumber.objects.filter(user=user).order_by("label", "id")


def api_key_list(*, user) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def recipient_list(*, campaign: Campaign, status: str | None = None, search: str | None = None) -> QuerySet[Recipient]:
    """A campaign's recipients in file order, optionally one call status or a number fragment."""
    recipients = Recipient.objects.filter(campaign=campaign).order_by("pk")
    if status:
        recipients = recipients.filter(status=status)
    if search:
        digits = "".join(ch for ch in search if ch.isdigit())
        recipients = recipients.filter(phone_number__contains=digits) if digits else recipients.none()
    return recipients
