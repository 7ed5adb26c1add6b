"""/readyz on the real stack: ready once beat's heartbeat arrives, not ready soon after beat dies."""

import requests

from campaigns.tests.integration.conftest import wait_until


def readyz(stack) -> requests.Response:
    return requests.get(f"{stack.url}/readyz", timeout=5)


def test_readyz_waits_for_beats_heartbeat_and_names_beat_once_it_stops(stack):
    stack.env.update({"BEAT_HEARTBEAT_EVERY": "1", "BEAT_HEARTBEAT_MAX_AGE_SECONDS": "4"})
    stack.web()
    first = readyz(stack)
    assert first.status_code == 503 and first.json()["error"] == "Not ready: beat."

    stack.worker()
    stack.beat()
    wait_until(lambda: readyz(stack).status_code == 200, timeout=30, message="/readyz answers 200")
    checks = readyz(stack).json()["data"]["checks"]
    assert all(check["ok"] for check in checks.values()), checks

    stack.kill("beat")
    # A Response is falsy when its status is an error: wait for its body instead.
    body = wait_until(
        lambda: (answer := readyz(stack)).status_code == 503 and answer.json(),
        timeout=20,
        message="/readyz answers 503 with beat stopped",
    )
    assert body["error"] == "Not ready: beat."
    assert body["errors"][0].startswith("beat: last heartbeat from beat ")
    assert [name for name, check in body["details"]["checks"].items() if not check["ok"]] == ["beat"]
