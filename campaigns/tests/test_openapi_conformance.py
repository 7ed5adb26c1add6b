"""The OpenAPI document tells the truth: Schemathesis (every check, its fuzzing, coverage and
stateful phases) sends generated requests to a live server and compares every answer with the
document. Configuration: campaigns/tests/openapi/schemathesis.toml."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from campaigns.models import ApiKey, Campaign, Suppression

from .openapi.seed import seed

HERE = Path(__file__).parent / "openapi"
ST = Path(sys.executable).with_name("st")


@pytest.fixture
def generous_rate_limits(settings):
    # The run sends about 2,000 requests in a few minutes, some on purpose without a key.
    settings.API_RATE_LIMIT = "100000/min"
    settings.API_BAD_KEY_RATE_LIMIT = "100000/min"


def test_every_answer_matches_the_openapi_document(live_server, generous_rate_limits, tmp_path):
    ids = seed()
    raw_key = ids.pop("api_key")
    config = tmp_path / "schemathesis.toml"
    config.write_text((HERE / "schemathesis.toml").read_text() + _parameters(ids))
    run = subprocess.run(
        [
            str(ST), "--config-file", str(config), "run", f"{live_server.url}/api/v1/openapi.json",
            "--no-color", "--report", "junit", "--report-dir", str(tmp_path / "report"),
        ],
        env={**os.environ, "ST_API_KEY": raw_key, "SCHEMATHESIS_HOOKS": "campaigns.tests.openapi.hooks"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, f"Schemathesis found answers the document does not describe:\n{run.stdout}{run.stderr}"
    operations = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", run.stdout)
    assert operations and len(set(operations.groups())) == 1, f"Not every operation was tested:\n{run.stdout}"
    # The requests reached the logic behind the key, not only the 401 in front of it.
    assert ApiKey.objects.filter(user__username="conformance").count() > 2, "no key was created"
    assert Suppression.objects.filter(user__username="conformance").count() > 1, "no number was added"
    assert Campaign.objects.get(pk=ids["campaign_id"]).status == Campaign.Status.CANCELLED


def _parameters(ids: dict) -> str:
    """The seeded ids, as dictionaries the path parameters draw from nine times in ten (the tenth
    is generated: an unknown id must be a documented 404). `api_key_id` always draws: a generated
    id could be the key the run uses."""
    lines = []
    for name, value in ids.items():
        lines += ["", f"[dictionaries.{name}]", f"values = [{json.dumps(value)}]"]
    lines += ["", "[parameters]"]
    for name in ids:
        probability = 1.0 if name == "api_key_id" else 0.9
        lines.append(f'{name} = {{ dictionary = "{name}", probability = {probability} }}')
    return "\n".join(lines) + "\n"
