"""Outgoing email: console, file (.eml) and SMTP backends."""

import smtplib
import sys
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from app.config import Settings


def build_message(settings: Settings, *, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "localhost")
    message.set_content(body)
    return message


def send_email(settings: Settings, *, to: str, subject: str, body: str) -> None:
    """Send one message with the configured backend."""
    message = build_message(settings, to=to, subject=subject, body=body)
    if settings.email_backend == "console":
        print(f"\n--- email ---\n{message.as_string()}--- end email ---\n", file=sys.stdout, flush=True)
    elif settings.email_backend == "file":
        directory = Path(settings.email_file_dir)
        directory.mkdir(parents=True, exist_ok=True)
        # Nanosecond prefix: files sort in sending order.
        name = f"{time.time_ns()}-{uuid.uuid4().hex}.eml"
        (directory / name).write_bytes(bytes(message))
    else:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
