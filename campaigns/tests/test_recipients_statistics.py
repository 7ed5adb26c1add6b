"""A large create leaves PostgreSQL's statistics of the recipients table up to date, so that the
first polls of its batches match reports by (campaign, phone number), not by status."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from campaigns import services
from campaigns.models import Recipient


def _csv(count: int) -> bytes:
    return ("phone_number\n" + "".join(f"+1212555{n:04d}\n" for n in range(count))).encode()


def _counted_rows() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [Recipient._meta.db_table])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("rows", "analyzed"), [(60, True), (40, False)])
def test_a_large_create_analyzes_the_recipients_table(user, agent, phone_number, monkeypatch, rows, analyzed):
    if connection.vendor != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's (set DATABASE_URL)")
    monkeypatch.setattr(services, "RECIPIENTS_ANALYZE_AFTER", 50)
    with connection.cursor() as cursor:
        # Autovacuum may have counted rows of an earlier test: start from "never analyzed".
        cursor.execute(f"TRUNCATE {Recipient._meta.db_table} CASCADE")
    before = _counted_rows()

    services.campaign_create(
        user=user,
        name="Statistics",
        agent_id=agent.elevenlabs_agent_id,
        phone_number_id=phone_number.pk,
        recipients_file=SimpleUploadedFile("recipients.csv", _csv(rows)),
        send_immediately=True,
    )

    assert Recipient.objects.count() == rows
    assert _counted_rows() == (rows if analyzed else before)
