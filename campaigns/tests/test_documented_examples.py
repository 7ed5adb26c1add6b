"""The cURL, Python and JavaScript examples of the Create Campaign page, run against a live server."""

import json
import subprocess

import pytest
import requests

from campaigns.models import Campaign

pytestmark = pytest.mark.django_db(transaction=True)

RECIPIENTS = "phone_number\n+12125550100\n+14155550123\n+442079460958\n"


@pytest.fixture
def recipients_csv(tmp_path):
    path = tmp_path / "recipients.csv"
    path.write_text(RECIPIENTS)
    return path


def assert_documented_201(result, *, send_immediately=True):
    assert result["status"] == {"code": 201, "message": "Campaign created successfully"}
    data = result["data"]
    assert data["name"]
    assert data["status"] == ("pending" if send_immediately else "scheduled")
    assert data["elevenlabs_batch_call_id"] is None
    assert data["recipients_count"] == 3
    assert data["send_immediately"] is send_immediately
    assert Campaign.objects.get(pk=data["id"]).recipients.count() == 3
    return data


def test_the_python_example(live_server, raw_api_key, agent, phone_number, recipients_csv):
    headers = {"X-API-Key": raw_api_key}
    with open(recipients_csv, "rb") as recipients:
        files = {"recipients_file": ("recipients.csv", recipients, "text/csv")}
        data = {
            "name": "Q1 Product Launch Campaign",
            "phone_number_id": phone_number.pk,
            "agent_id": agent.elevenlabs_agent_id,
            "send_immediately": True,
        }
        response = requests.post(f"{live_server.url}/api/v1/campaigns", headers=headers, files=files, data=data)

    assert response.status_code == 201, response.text
    assert_documented_201(response.json())


def test_the_curl_examples_immediate_and_scheduled(live_server, raw_api_key, agent, phone_number, recipients_csv):
    common = [
        "curl", "-sS", "-X", "POST", f"{live_server.url}/api/v1/campaigns",
        "-H", f"X-API-Key: {raw_api_key}",
        "-F", f"phone_number_id={phone_number.pk}",
        "-F", f"agent_id={agent.elevenlabs_agent_id}",
        "-F", f"recipients_file=@{recipients_csv}",
    ]  # fmt: skip
    now = subprocess.run(
        [*common, "-F", "name=Q1 Product Launch Campaign", "-F", "send_immediately=true"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert_documented_201(json.loads(now.stdout))

    later = subprocess.run(
        [
            *common, "-F", "name=Scheduled Campaign", "-F", "send_immediately=false",
            "-F", "schedule_date=2099-02-01", "-F", "schedule_time=10:00:00",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = assert_documented_201(json.loads(later.stdout), send_immediately=False)
    assert data["scheduled_at"] == "2099-02-01T10:00:00Z"


def test_the_javascript_example(live_server, raw_api_key, agent, phone_number, recipients_csv, tmp_path):
    # The page's code, with fileInput.files[0] being the CSV read from disk.
    script = tmp_path / "example.mjs"
    script.write_text(
        f"""
import {{ readFileSync }} from 'node:fs';
const fileInput = {{ files: [new File([readFileSync({json.dumps(str(recipients_csv))})], 'recipients.csv',
                                      {{ type: 'text/csv' }})] }};
const formData = new FormData();
formData.append('name', 'Q1 Product Launch Campaign');
formData.append('phone_number_id', '{phone_number.pk}');
formData.append('agent_id', '{agent.elevenlabs_agent_id}');
formData.append('recipients_file', fileInput.files[0]);
formData.append('send_immediately', 'true');

const response = await fetch('{live_server.url}/api/v1/campaigns', {{
  method: 'POST',
  headers: {{
    'X-API-Key': '{raw_api_key}'
  }},
  body: formData
}});

const data = await response.json();
console.log(JSON.stringify({{ httpStatus: response.status, data }}));
"""
    )
    result = subprocess.run(["node", str(script)], capture_output=True, text=True, check=True)
    output = json.loads(result.stdout)
    assert output["httpStatus"] == 201
    assert_documented_201(output["data"])
