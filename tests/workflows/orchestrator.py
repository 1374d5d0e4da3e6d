"""A stand-in for the platform's video-job orchestrator: a real workflow that uses loraflow only
through ``loraflow.client``, as the real one would."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from loraflow.client import job_lora_status, plan_clip, send_character_references
    from loraflow.contracts.jobs import JobLoraReport, JobLoraStatus, LoraFinished, ReferenceImage
    from loraflow.domain.clips import ClipPlan, ClipRequest


@dataclass
class Clip:
    character_id: str
    video_model: str
    reference_image_url: str


@dataclass
class OrchestratorInput:
    job_id: str
    references: list[ReferenceImage]
    clips: list[Clip]
    loraflow_task_queue: str
    loraflow_gpu_task_queue: str  # plan_clip's: the GPU worker's queue


@dataclass
class OrchestratorResult:
    report: JobLoraReport
    finished: list[LoraFinished]
    statuses: list[JobLoraStatus]
    plans: list[ClipPlan] = field(default_factory=list)


@workflow.defn(name="StandInOrchestrator")
class StandInOrchestrator:
    def __init__(self) -> None:
        self._report: JobLoraReport | None = None
        self._finished: list[LoraFinished] = []

    @workflow.signal(name="lora_characters")
    def lora_characters(self, report: JobLoraReport) -> None:
        self._report = report

    @workflow.signal(name="lora_finished")
    def lora_finished(self, finished: LoraFinished) -> None:
        self._finished.append(finished)

    @workflow.run
    async def run(self, job: OrchestratorInput) -> OrchestratorResult:
        # After the Reference Generator: hand loraflow the job's character references.
        await send_character_references(job.job_id, job.references)
        await workflow.wait_condition(lambda: self._report is not None)
        assert self._report is not None
        # (A real orchestrator would not wait; the test does, to see the LoRA applied.)
        await workflow.wait_condition(lambda: len(self._finished) >= len(self._report.trained))
        # Once, at video-generation start: which of the job's LoRAs are ready?
        statuses = await job_lora_status(job.job_id, task_queue=job.loraflow_task_queue)
        ready = {s.character_id: s.lora_id for s in statuses if s.ready}
        plans = []
        for index, clip in enumerate(job.clips):
            plans.append(
                await plan_clip(
                    ClipRequest(
                        job_id=job.job_id,
                        clip_id=f"{job.job_id}/clip-{index}",
                        prompt="walking through a market at dusk",
                        reference_image_url=clip.reference_image_url,
                        video_model=clip.video_model,
                        lora_id=ready.get(clip.character_id),
                    ),
                    task_queue=job.loraflow_gpu_task_queue,
                )
            )
        return OrchestratorResult(self._report, self._finished, statuses, plans)
