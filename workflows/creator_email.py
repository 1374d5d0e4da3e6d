"""CreatorEmailWorkflow (id ``lora-email-{lora_id}-{status}``, ``names.creator_email_workflow_id``):
the e-mail that tells a LoRA's creator it is ready, or why it failed.

TrainLoraWorkflow starts it as it ends, as an abandoned child: the training closes at once, and
a mail server that is down or slow holds only this workflow, which retries the one activity with
backoff for about a day. Its id is one per outcome and never reused, so a replayed or reset
training cannot send a second e-mail. A permanent refusal (a 5xx reply) fails it at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.mail import MailActivities
    from loraflow.contracts.errors import ErrorType
    from loraflow.contracts.lora_training import EmailDelivery, OutcomeEmail

#: How long the e-mail is retried (every attempt's backoff included) before it is given up.
RETRY_FOR = timedelta(days=1)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    non_retryable_error_types=[ErrorType.EMAIL_REJECTED],
)


@workflow.defn(name="CreatorEmailWorkflow")
class CreatorEmailWorkflow:
    @workflow.run
    async def run(self, request: OutcomeEmail) -> EmailDelivery:
        return await workflow.execute_activity_method(
            MailActivities.send_outcome_email,
            request,
            start_to_close_timeout=timedelta(minutes=1),
            schedule_to_close_timeout=RETRY_FOR,
            retry_policy=RETRY,
        )
