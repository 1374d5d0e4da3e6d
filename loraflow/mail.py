"""E-mail to a LoRA's creator: the SMTP server from ``LORAFLOW_SMTP_URL``, the outcome message,
and sending it (aiosmtplib). What a refusal means for a retry is the activity's business
(``activities/mail.py``); this module only speaks SMTP.

The URL: ``smtp://[user:password@]host[:port]`` (port 25; STARTTLS when the server offers it),
``smtp://...?starttls=true`` (STARTTLS required; port 587), ``?starttls=false`` (never), or
``smtps://[user:password@]host[:port]`` (TLS from the first byte; port 465). User and password
are percent-decoded, so a password may hold any character (``p%40ss`` is ``p@ss``).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["SmtpConfig", "message_id", "outcome_message", "parse_smtp_url", "send_mail"]

#: Seconds each SMTP operation (connect, each command) may take before the attempt fails.
SMTP_TIMEOUT_S = 30.0
_SCHEMES = {"smtp": False, "smtps": True}  # scheme -> TLS from the first byte
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int | None = None  # None: aiosmtplib's default for the mode (25, 587 or 465)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False  # smtps://
    start_tls: bool | None = None  # None: STARTTLS when the server offers it


def parse_smtp_url(url: str) -> SmtpConfig:
    """The server an ``smtp://`` or ``smtps://`` URL names. A ValueError says what is wrong
    with it and never repeats the password."""
    expected = (
        "smtp://[user:password@]host[:port][?starttls=true|false] or smtps://[user:password@]host[:port]"
    )
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        got = f"a {scheme}:// URL" if scheme else "no scheme"
        raise ValueError(f"LORAFLOW_SMTP_URL must be {expected}; got {got}")
    if not parts.hostname:
        raise ValueError(f"LORAFLOW_SMTP_URL names no host; expected {expected}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("LORAFLOW_SMTP_URL's port is not a number from 0 to 65535") from None
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - {"starttls"})
    if unknown:
        raise ValueError(f"LORAFLOW_SMTP_URL: unknown option(s) {', '.join(unknown)} (only starttls)")
    start_tls = None
    if "starttls" in options:
        value = options["starttls"][-1].strip().lower()
        if value not in _BOOLEANS:
            raise ValueError("LORAFLOW_SMTP_URL: starttls must be true or false")
        start_tls = _BOOLEANS[value]
    use_tls = _SCHEMES[scheme]
    if use_tls and start_tls:
        raise ValueError("LORAFLOW_SMTP_URL: smtps:// is TLS already; starttls=true is for smtp://")
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=use_tls,
        start_tls=False if use_tls else start_tls,
    )


def message_id(lora_id: str, status: str, sender: str) -> str:
    """The same on every retry of one outcome's e-mail, so a receiver drops a second delivery
    (an attempt whose success never reached Temporal is sent again)."""
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "loraflow"
    return f"<lora-{lora_id}-{status}@{domain}>"


def outcome_message(
    *, sender: str, to: str, lora_id: str, name: str, status: str, error: str | None, link: str
) -> EmailMessage:
    """The e-mail that tells a creator their LoRA is ready, or why it failed, with its link."""
    name = " ".join(name.split())  # a header holds one line
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = message_id(lora_id, status, sender)
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    if status == "completed":
        message["Subject"] = f'Your LoRA "{name}" is ready'
        what = f'Your LoRA "{name}" has finished training and passed validation: it is in the library now.'
    else:
        message["Subject"] = f'Your LoRA "{name}" failed'
        what = f'Your LoRA "{name}" failed: {error or "no reason was recorded"}'
    message.set_content(f"Hello,\n\n{what}\n\n{link}\n\n-- \nloraflow\n")
    return message


async def send_mail(config: SmtpConfig, message: EmailMessage) -> None:
    """Deliver ``message`` to its ``To`` through the configured server; aiosmtplib's errors
    (``SMTPResponseException`` with the reply code, ``SMTPRecipientsRefused``, connection
    errors) pass through."""
    import aiosmtplib

    await aiosmtplib.send(
        message,
        hostname=config.host,
        port=config.port,
        username=config.username,
        password=config.password,
        use_tls=config.use_tls,
        start_tls=config.start_tls,
        timeout=SMTP_TIMEOUT_S,
    )
