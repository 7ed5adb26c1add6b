"""Each recipient's outcome in the words people use: still in the pipeline, or how its call finished;
the same rule in Python (one recipient) and in the database (counting a campaign)."""

import itertools

import pytest

from campaigns import tracking
from campaigns.models import Recipient

from .factories import CampaignFactory

pytestmark = pytest.mark.django_db

STATUSES = Recipient.Status.values
CALL_RESULTS = ("", "answered", "voicemail", "busy", "no_answer", "failed")
VERDICTS = ("", "success", "failure", "unknown")
FAILURE_REASONS = ("", "busy", "no-answer", "unknown")


def test_the_outcome_rule_is_the_same_in_python_and_in_the_database(user):
    campaign = CampaignFactory(user=user)
    combinations = list(itertools.product(STATUSES, CALL_RESULTS, VERDICTS, FAILURE_REASONS, (1, 2), ("", "conv")))
    Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign, phone_number=f"+1212555{n:04d}", line=n, status=status, call_result=result,
            call_successful=verdict, failure_reason=reason, attempt=attempt,
            conversation_id=f"{conversation}{n}" if conversation else "",
        )
        for n, (status, result, verdict, reason, attempt, conversation) in enumerate(combinations)
    )  # fmt: skip

    in_sql = dict(
        Recipient.objects.filter(campaign=campaign)
        .annotate(outcome=tracking.outcome_case())
        .values_list("pk", "outcome")
    )
    for recipient in Recipient.objects.filter(campaign=campaign):
        expected = tracking.outcome_of(
            status=recipient.status, call_result=recipient.call_result, call_successful=recipient.call_successful,
            failure_reason=recipient.failure_reason, attempt=recipient.attempt,
            conversation_id=recipient.conversation_id,
        )  # fmt: skip
        assert in_sql[recipient.pk] == expected, recipient.__dict__
    assert set(in_sql.values()) == set(tracking.OUTCOME_LABELS)


@pytest.mark.parametrize(
    "fields,outcome",
    [
        ({"status": "pending"}, "pending"),
        ({"status": "dispatched"}, "queued"),
        ({"status": "dispatched", "conversation_id": "conv_1"}, "waiting_retry"),  # a lead's next call
        ({"status": "pending", "attempt": 2}, "waiting_retry"),  # a batch retry
        ({"status": "initiated"}, "ringing"),
        ({"status": "in_progress"}, "on_call"),
        ({"status": "completed", "call_successful": "success"}, "answered_successful"),
        ({"status": "completed", "call_successful": "failure"}, "answered_unsuccessful"),
        ({"status": "completed", "call_successful": "unknown"}, "answered"),
        ({"status": "completed"}, "answered"),  # its post-call webhook is not in yet
        ({"status": "voicemail", "call_successful": "failure", "call_result": "voicemail"}, "voicemail"),
        ({"status": "failed", "failure_reason": "busy"}, "busy"),
        ({"status": "failed", "call_result": "no_answer", "failure_reason": "no-answer"}, "no_answer"),
        ({"status": "failed", "failure_reason": "unknown"}, "failed"),
        ({"status": "cancelled"}, "cancelled"),
    ],
)
def test_each_recipient_has_one_outcome(fields, outcome):
    values = {"call_result": "", "call_successful": "", "failure_reason": "", "attempt": 1, "conversation_id": ""}
    assert tracking.outcome_of(**{**values, **fields}) == outcome
