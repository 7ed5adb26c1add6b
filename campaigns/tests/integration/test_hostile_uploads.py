"""One user's hostile uploads cost other users nothing: real gunicorn on PostgreSQL, real HTTP."""

import threading
import time

import pytest
import requests

from campaigns import services
from campaigns.models import Campaign
from campaigns.tests import hostile_files
from campaigns.tests.factories import AgentFactory, PhoneNumberFactory, UserFactory

from .conftest import wait_until

BOMBS = [
    "zip bomb: a 1 GiB sheet in 3 MB, honest headers",
    "20,000,000 empty CSV lines (20 MB)",
    "400,000-row sheet, ordinary compression",
    "1,000,001-column CSV header (7.9 MB)",
    "one 9,000-character shared string in every cell",
]


def account(name: str) -> dict:
    user = UserFactory(username=name)
    return {
        "user": user,
        "key": services.api_key_create(user=user).raw_key,
        "agent_id": AgentFactory(user=user).elevenlabs_agent_id,
        "phone_number_id": PhoneNumberFactory(user=user).pk,
    }


def create(session: requests.Session, url: str, who: dict, content: bytes, filename: str) -> requests.Response:
    return session.post(
        f"{url}/api/v1/campaigns",
        headers={"X-API-Key": who["key"]},
        data={
            "name": f"from {filename}",
            "agent_id": who["agent_id"],
            "phone_number_id": who["phone_number_id"],
            "send_immediately": "false",
            "schedule_date": "2099-01-01",
            "schedule_time": "10:00:00",
        },
        files={"recipients_file": (filename, content)},
        timeout=60,
    )


@pytest.fixture
def hostile():
    """The bombs to upload, built before anything is timed."""
    cases = {case.name: case for case in hostile_files.HOSTILE}
    return [(cases[name], cases[name].build()) for name in BOMBS]


def test_other_users_are_answered_within_a_second_while_bombs_are_being_refused(stack, hostile):
    stack.web()
    attacker, neighbour = account("mallory"), account("alice")
    answers: list[tuple[str, int, str]] = []
    neighbour_done = threading.Event()

    def upload_bombs() -> None:
        with requests.Session() as session:
            while not neighbour_done.is_set():
                for case, content in hostile:
                    response = create(session, stack.url, attacker, content, case.filename)
                    answers.append((case.name, response.status_code, response.json()["error"]))

    bomber = threading.Thread(target=upload_bombs)
    bomber.start()
    timings = []
    try:
        with requests.Session() as session:
            for round_number in range(4):
                # Each round starts once another bomb was answered: the uploads go on all along.
                refused = len(answers)
                wait_until(lambda refused=refused: len(answers) > refused, timeout=30, message="a bomb is refused")
                started = time.perf_counter()
                listing = session.get(
                    f"{stack.url}/api/v1/campaigns", headers={"X-API-Key": neighbour["key"]}, timeout=10
                )
                timings.append(("list", listing.status_code, time.perf_counter() - started))
                started = time.perf_counter()
                created = create(
                    session, stack.url, neighbour, f"phone_number\n+1415555{2671 + round_number}\n".encode(), "r.csv"
                )
                timings.append(("create", created.status_code, time.perf_counter() - started))
    finally:
        neighbour_done.set()
        bomber.join(timeout=120)

    assert [(kind, status) for kind, status, _ in timings] == [("list", 200), ("create", 201)] * 4
    assert max(seconds for _, _, seconds in timings) < 1, timings
    # Every bomb was refused with its own status and message, while the neighbour was served.
    assert len(answers) >= 5
    expected = {case.name: case for case, _ in hostile}
    for name, status, error in answers:
        assert status == expected[name].status, (name, status, error)
        assert expected[name].message in error, (name, error)
    assert Campaign.objects.filter(user=attacker["user"]).count() == 0
    assert Campaign.objects.filter(user=neighbour["user"]).count() == 4
    assert "Traceback" not in stack.log("web")
