"""The creator's e-mail (CreatorEmailWorkflow and its send_outcome_email activity) on the real
Temporal dev server, through a real SMTP server (aiosmtpd, tests/helpers/mailbox.py), to the
address PostgreSQL holds for the LoRA's creator: its recipient, subject, link and Message-ID; a
5xx refusal ends it at once; a 4xx one is retried by Temporal and delivered once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.mail import MailActivities
from loraflow import net
from loraflow.contracts.errors import ErrorType
from loraflow.contracts.lora_training import EmailDelivery, OutcomeEmail
from loraflow.contracts.names import creator_email_workflow_id
from loraflow.contracts.status import TrainingStatus
from loraflow.mail import SmtpConfig, parse_smtp_url
from tests.helpers.histories import record_history
from tests.helpers.loras import new_lora
from tests.helpers.mailbox import Mailbox
from workflows.creator_email import CreatorEmailWorkflow

SENDER = "loraflow <noreply@loraflow.example>"


def _link(lora_id: str) -> str:
    return f"https://app.example/loras/{lora_id}"


def _activities(pool: AsyncConnectionPool, smtp: SmtpConfig | None) -> MailActivities:
    return MailActivities(pool=pool, smtp=smtp, sender=SENDER, link=_link)


@asynccontextmanager
async def _mail_worker(client: Client, pool: AsyncConnectionPool, smtp_url: str) -> AsyncIterator[str]:
    task_queue = f"mail-{uuid.uuid4().hex[:8]}"
    mail = _activities(pool, parse_smtp_url(smtp_url))
    async with Worker(
        client, task_queue=task_queue, workflows=[CreatorEmailWorkflow], activities=[mail.send_outcome_email]
    ):
        yield task_queue


async def _creator(pool: AsyncConnectionPool, *, with_address: bool = True) -> tuple[str, str]:
    """A new user's LoRA ("Red shirt", tests/helpers/loras.py): its id, and the address the
    user gets in ``auth.users`` (Supabase Auth's record) unless ``with_address`` is False."""
    user_id, lora_id = await new_lora(pool)
    address = f"creator-{user_id[:8]}@example.com"
    if with_address:
        await _set_address(pool, user_id, address)
    return lora_id, address


async def _set_address(pool: AsyncConnectionPool, user_id: str, address: str) -> None:
    async with pool.connection() as conn:
        await conn.execute("UPDATE auth.users SET email = %s WHERE id = %s", [address, user_id])


async def _start(
    client: Client, queue: str, email: OutcomeEmail
) -> WorkflowHandle[CreatorEmailWorkflow, EmailDelivery]:
    return await client.start_workflow(
        CreatorEmailWorkflow.run,
        email,
        id=creator_email_workflow_id(email.lora_id, email.status),
        task_queue=queue,
    )


async def _attempts(handle: WorkflowHandle[CreatorEmailWorkflow, EmailDelivery]) -> int:
    """The attempt the activity ended on (the history keeps the last attempt's start)."""
    (started,) = [
        e.activity_task_started_event_attributes
        for e in (await handle.fetch_history()).events
        if e.HasField("activity_task_started_event_attributes")
    ]
    return started.attempt


async def test_the_creator_is_told_the_outcome_with_a_link(
    temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, smtp: tuple[str, Mailbox]
) -> None:
    url, mailbox = smtp
    completed_id, completed_to = await _creator(pool)
    failed_id, failed_to = await _creator(pool)
    async with _mail_worker(temporal_env.client, pool, url) as queue:
        client = temporal_env.client
        ready = await _start(client, queue, OutcomeEmail(completed_id, TrainingStatus.COMPLETED))
        reason = "validation failed: at best 1 of 3 validation images show the character"
        failed = await _start(client, queue, OutcomeEmail(failed_id, TrainingStatus.FAILED, reason))
        assert await ready.result() == EmailDelivery(sent=True)
        assert await failed.result() == EmailDelivery(sent=True)

    (mail,) = mailbox.to(completed_to)
    assert mail.rcpt_tos == [completed_to] and mail.mail_from == "noreply@loraflow.example"
    assert mail.message["To"] == completed_to and mail.message["From"] == SENDER
    assert mail.message["Subject"] == 'Your LoRA "Red shirt" is ready'
    assert _link(completed_id) in mail.body
    # The same on every attempt (a receiver drops a second delivery); long, so the header is folded.
    assert mail.message["Message-ID"].strip() == f"<lora-{completed_id}-completed@loraflow.example>"

    (mail,) = mailbox.to(failed_to)
    assert mail.message["Subject"] == 'Your LoRA "Red shirt" failed'
    assert reason in mail.body and _link(failed_id) in mail.body
    assert mail.message["Message-ID"].strip() == f"<lora-{failed_id}-failed@loraflow.example>"


async def test_a_permanent_refusal_ends_it_at_once(
    temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, smtp: tuple[str, Mailbox]
) -> None:
    url, mailbox = smtp
    lora_id, address = await _creator(pool)
    mailbox.answer(address, "550 5.1.1 No such mailbox")
    async with _mail_worker(temporal_env.client, pool, url) as queue:
        handle = await _start(temporal_env.client, queue, OutcomeEmail(lora_id, TrainingStatus.COMPLETED))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, ActivityError)
    refusal = failed.value.cause.cause
    assert isinstance(refusal, ApplicationError) and refusal.type == ErrorType.EMAIL_REJECTED
    assert refusal.non_retryable and "550 5.1.1 No such mailbox" in refusal.message
    assert await _attempts(handle) == 1
    assert mailbox.to(address) == []


@pytest.mark.records_history
async def test_a_temporary_refusal_is_retried_and_delivered_once(
    temporal_env: WorkflowEnvironment, pool: AsyncConnectionPool, smtp: tuple[str, Mailbox]
) -> None:
    url, mailbox = smtp
    lora_id, address = await _creator(pool)
    mailbox.answer(address, "451 4.3.0 Try again later", times=1)
    async with _mail_worker(temporal_env.client, pool, url) as queue:
        handle = await _start(temporal_env.client, queue, OutcomeEmail(lora_id, TrainingStatus.COMPLETED))
        assert await handle.result() == EmailDelivery(sent=True)
    assert await _attempts(handle) == 2  # the 451, then the delivery: one message
    (mail,) = await mailbox.wait_for(address)
    assert mail.message["Subject"] == 'Your LoRA "Red shirt" is ready'
    await record_history(handle, "creator_email_retried")


async def test_nothing_is_sent_without_a_server_or_an_address_and_a_server_that_is_down_is_retried(
    pool: AsyncConnectionPool,
) -> None:
    user_id, lora_id = await new_lora(pool)  # its user has no address yet
    email = OutcomeEmail(lora_id, TrainingStatus.COMPLETED)
    env = ActivityEnvironment()
    unset = await env.run(_activities(pool, None).send_outcome_email, email)
    assert unset == EmailDelivery(sent=False, reason="LORAFLOW_SMTP_URL is not set")
    down = _activities(pool, parse_smtp_url(f"smtp://127.0.0.1:{net.free_port()}"))  # nothing listens
    unknown = await env.run(down.send_outcome_email, OutcomeEmail(str(uuid.uuid4()), TrainingStatus.FAILED))
    assert unknown == EmailDelivery(sent=False, reason="no such LoRA")
    no_address = await env.run(down.send_outcome_email, email)
    assert no_address == EmailDelivery(sent=False, reason="its creator has no e-mail address")
    # With an address, the server that is down is a connection error: retried, not a refusal.
    await _set_address(pool, user_id, f"creator-{user_id[:8]}@example.com")
    with pytest.raises(ApplicationError) as failed:
        await env.run(down.send_outcome_email, email)
    assert not failed.value.non_retryable and failed.value.type is None
    assert "could not reach the SMTP server" in failed.value.message
