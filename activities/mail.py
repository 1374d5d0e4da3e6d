"""The creator's e-mail when a LoRA completes or fails (``CreatorEmailWorkflow`` runs it, retried
by Temporal with backoff for about a day).

The address is the creator's in ``auth.users`` (Supabase Auth's, or its stand-in), read as the
service. A 5xx reply (no such mailbox, relaying denied, authentication failed) is final:
``ErrorType.EMAIL_REJECTED``, not retried. A 4xx reply, a timeout or a server that is down is
retried. The Message-ID is the same on every attempt (``loraflow.mail.message_id``), so a
receiver can drop a second delivery.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, NoReturn

import aiosmtplib
from temporalio import activity
from temporalio.exceptions import ApplicationError

from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import EmailDelivery, OutcomeEmail
from loraflow.db import as_service
from loraflow.logging import get_logger
from loraflow.mail import SmtpConfig, outcome_message, send_mail

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import EmailMessage

    from psycopg_pool import AsyncConnectionPool
    from structlog.stdlib import BoundLogger

log = get_logger(__name__)


class MailActivities:
    """Async: aiosmtplib and the worker's async pool."""

    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        smtp: SmtpConfig | None,
        sender: str,
        link: Callable[[str], str],
    ) -> None:
        self._pool = pool
        self._smtp = smtp
        self._sender = sender
        self._link = link

    @activity.defn(name="send_outcome_email")
    async def send_outcome_email(self, request: OutcomeEmail) -> EmailDelivery:
        """E-mail the LoRA's creator its outcome; not sent when no SMTP server is configured or
        the creator has no address."""
        info = activity.info()
        bound = log.bind(lora_id=request.lora_id, status=str(request.status),
                         workflow_id=info.workflow_id, attempt=info.attempt)  # fmt: skip
        if self._smtp is None:
            return _not_sent(bound, "LORAFLOW_SMTP_URL is not set")
        creator = await self._creator(request.lora_id)
        if creator is None:
            return _not_sent(bound, "no such LoRA")
        name, address = creator
        if not address:
            return _not_sent(bound, "its creator has no e-mail address")
        message = outcome_message(
            sender=self._sender,
            to=address,
            lora_id=request.lora_id,
            name=name,
            status=str(request.status),
            error=request.error,
            link=self._link(request.lora_id),
        )
        await _deliver(self._smtp, message)
        bound.info("outcome_email_sent", message_id=message["Message-ID"])
        return EmailDelivery(sent=True)

    async def _creator(self, lora_id: str) -> tuple[str, str | None] | None:
        """The LoRA's name and its creator's address; None when there is no such LoRA."""
        try:
            uuid.UUID(lora_id)
        except ValueError:
            return None
        async with as_service(self._pool) as conn:
            cur = await conn.execute(
                """SELECT m.name, u.email FROM lora_models m
                     LEFT JOIN auth.users u ON u.id = m.user_id
                    WHERE m.id = %s""",
                [lora_id],
            )
            row = await cur.fetchone()
        return None if row is None else (row["name"], row["email"])


async def _deliver(smtp: SmtpConfig, message: EmailMessage) -> None:
    """Send; a refusal becomes an ApplicationError whose retryability is its reply code's."""
    try:
        await send_mail(smtp, message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        _refused(f"the SMTP server refused the recipient: {detail}", permanent=all(c >= 500 for c in codes))
    except aiosmtplib.SMTPResponseException as exc:
        _refused(f"the SMTP server answered {exc.code} {exc.message}", permanent=exc.code >= 500)
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ApplicationError(f"could not reach the SMTP server: {exc}; will retry") from exc


def _refused(reason: str, *, permanent: bool) -> NoReturn:
    if permanent:
        raise ApplicationError(reason, type=ErrorType.EMAIL_REJECTED, non_retryable=True)
    raise ApplicationError(f"{reason}; will retry")


def _not_sent(bound: BoundLogger, reason: str) -> EmailDelivery:
    bound.info("outcome_email_not_sent", reason=reason)
    return EmailDelivery(sent=False, reason=reason)
