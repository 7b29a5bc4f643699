"""Email backends: file (.eml), console, and SMTP against a real aiosmtpd server."""

import email
import re
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller

from app.services.email import send_email


class Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def test_login_code_is_sent_over_real_smtp(client, settings, smtp_server, monkeypatch):
    controller, handler = smtp_server
    monkeypatch.setattr(settings, "email_backend", "smtp")
    monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(settings, "smtp_port", controller.port)
    monkeypatch.setattr(settings, "smtp_from", "shop@shop.test")
    response = client.post("/auth/request-code", json={"email": "smtp-user@shop.test"})
    assert response.status_code == 202
    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "shop@shop.test"
    assert envelope.rcpt_tos == ["smtp-user@shop.test"]
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    code = re.search(r"\b(\d{6})\b", message.get_content()).group(1)
    verified = client.post("/auth/verify-code", json={"email": "smtp-user@shop.test", "code": code})
    assert verified.status_code == 200


def test_file_backend_writes_rfc5322_messages(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "email_backend", "file")
    monkeypatch.setattr(settings, "email_file_dir", str(tmp_path))
    send_email(settings, to="a@shop.test", subject="Hello", body="Body text\n")
    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "a@shop.test" and message["Subject"] == "Hello"
    assert message["Message-ID"] and message["Date"]
    assert message.get_content() == "Body text\n"


def test_console_backend_prints_the_message(settings, capsys, monkeypatch):
    monkeypatch.setattr(settings, "email_backend", "console")
    send_email(settings, to="b@shop.test", subject="Code", body="Your code is 123456\n")
    out = capsys.readouterr().out
    assert "To: b@shop.test" in out and "Your code is 123456" in out


def test_email_is_not_sent_when_the_transaction_fails(client, mailbox, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("app.services.auth.request_code", broken)
    with pytest.raises(RuntimeError):
        client.post("/auth/request-code", json={"email": "nomail@shop.test"})
    assert mailbox.messages("nomail@shop.test") == []
