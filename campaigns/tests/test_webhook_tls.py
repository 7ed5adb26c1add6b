"""Event webhooks to an https receiver: the connection goes to the address checked against
request forgery, while TLS still names the host (SNI) and checks its certificate against it.
A real TLS server in a thread, with certificates made by openssl for the test."""

import datetime as dt
import shutil
import subprocess

import certifi
import pytest
from standardwebhooks import Webhook

from campaigns.events import delivery

from . import webhook_receiver
from .webhook_receiver import Receiver

HOST = "hooks.voiceable.test"
SECRET = "whsec_" + "c2VjcmV0LWZvci10bHMtdGVzdHM="


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A certificate authority, and two server certificates it signed: one for HOST, one for
    another name."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates (Debian's openssl package)")
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=Voiceable test CA", cwd=folder)  # fmt: skip
    for name in (HOST, "elsewhere.voiceable.test"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
        (folder / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip
    return folder


@pytest.fixture
def https_receiver(certificates, settings):
    """A receiver serving HOST's certificate, which resolves to 127.0.0.1 (allowed here)."""
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = True
    settings.OUTBOUND_WEBHOOKS_RESOLVER = "campaigns.tests.webhook_receiver.resolve"
    settings.OUTBOUND_WEBHOOKS_CA_BUNDLE = str(certificates / "ca.pem")
    webhook_receiver.ANSWERS.clear()
    webhook_receiver.ANSWERS.update({HOST: ["127.0.0.1"], "elsewhere.voiceable.test": ["127.0.0.1"]})
    started = []

    def start(certificate_name: str = HOST) -> Receiver:
        receiver = Receiver(tls=(certificates / f"{certificate_name}.pem", certificates / f"{certificate_name}.key"))
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
    webhook_receiver.ANSWERS.clear()


def _send(url: str) -> tuple[delivery.Outcome, str]:
    body = '{"type":"campaign.status_changed","data":{"id":1}}'
    headers = delivery.signed_headers(secret=SECRET, message_id="msg_tls_1", body=body, at=dt.datetime.now(dt.UTC))
    return delivery.post(url=url, body=body, headers=headers), body


def test_an_https_receiver_gets_the_signed_event_with_its_name_in_sni_and_host(https_receiver):
    receiver = https_receiver()

    outcome, body = _send(f"https://{HOST}:{receiver.port}/hook")

    assert outcome.ok and outcome.status_code == 204, outcome.error
    [received] = receiver.received
    # Connected to the checked address, yet TLS and HTTP both named the host.
    assert receiver.server_names == [HOST]
    assert received.headers["Host"] == f"{HOST}:{receiver.port}"
    # The receiver verifies it with the Standard Webhooks library, as the README shows.
    assert Webhook(SECRET).verify(received.body, received.headers) == {
        "type": "campaign.status_changed",
        "data": {"id": 1},
    }
    assert received.body.decode() == body


def test_a_certificate_for_another_name_is_refused_and_nothing_is_sent(https_receiver):
    receiver = https_receiver("elsewhere.voiceable.test")

    outcome, _ = _send(f"https://{HOST}:{receiver.port}/hook")

    assert not outcome.ok and outcome.status_code is None
    assert "certificate" in outcome.error.lower() or "hostname" in outcome.error.lower(), outcome.error
    assert receiver.received == []


def test_a_certificate_from_an_authority_not_trusted_is_refused(https_receiver, settings):
    receiver = https_receiver()
    settings.OUTBOUND_WEBHOOKS_CA_BUNDLE = certifi.where()  # Mozilla's authorities: not ours

    outcome, _ = _send(f"https://{HOST}:{receiver.port}/hook")

    assert not outcome.ok and "certificate" in outcome.error.lower(), outcome.error
    assert receiver.received == []
