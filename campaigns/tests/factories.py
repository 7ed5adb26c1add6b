import factory
from django.contrib.auth import get_user_model

from campaigns.models import Agent, Campaign, PhoneNumber, Recipient


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_staff = True
    password = factory.django.Password("correct horse battery")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    user = factory.SubFactory(UserFactory)
    elevenlabs_agent_id = factory.Sequence(lambda n: f"agent_{n:04d}")
    name = factory.Sequence(lambda n: f"Agent {n}")


class PhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    user = factory.SubFactory(UserFactory)
    elevenlabs_phone_number_id = factory.Sequence(lambda n: f"phnum_{n:04d}")
    phone_number = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    label = factory.Sequence(lambda n: f"Line {n}")
    provider = "twilio"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    agent = factory.SubFactory(AgentFactory, user=factory.SelfAttribute("..user"))
    phone_number = factory.SubFactory(PhoneNumberFactory, user=factory.SelfAttribute("..user"))
    status = Campaign.Status.PENDING
    send_immediately = True


class RecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recipient

    campaign = factory.SubFactory(CampaignFactory)
    phone_number = factory.Sequence(lambda n: f"+1212555{n % 10000:04d}")
    line = factory.Sequence(lambda n: n + 2)


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Call"

    recipient = factory.SubFactory(RecipientFactory)
    campaign = factory.SelfAttribute("recipient.campaign")
    attempt = 1
    conversation_id = factory.Sequence(lambda n: f"conv_{n:04d}")


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Suppression"

    user = factory.SubFactory(UserFactory)
    phone_number = factory.Sequence(lambda n: f"+1312555{n % 10000:04d}")
    reason = ""
    source = "api"
