"""The compute-provider interface every provider implements (local, RunPod, Replicate)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from loraflow.contracts.lora_training import PodHandle


class PodStatus(enum.StrEnum):
    starting = "starting"  # asked for; the agent may not answer yet
    running = "running"  # the machine runs (the agent may still be starting)
    exited = "exited"  # stopped by itself; still billable until terminated on some providers
    failed = "failed"  # the provider says it cannot run (RunPod's ERROR): it will never be ready
    terminated = "terminated"  # gone: no longer billed


@dataclass(frozen=True)
class PodState:
    """What a provider reports about a pod: the handle the workflow keeps (how to reach the
    agent, what it costs) and the pod's status now."""

    handle: PodHandle
    status: PodStatus


class ComputeProvider(Protocol):
    name: str

    def create(self, name: str) -> PodState:
        """The pod called ``name``: the existing one if there is one, else a new one. Calling it
        again after a timeout or crash never makes a second pod."""
        ...

    def describe(self, pod_id: str) -> PodState:
        """The pod's current state; ``terminated`` once it is gone (also if it never existed)."""
        ...

    def terminate(self, pod_id: str) -> None:
        """Ask for the pod to be gone. Idempotent; confirm with ``describe``."""
        ...

    def list_pods(self) -> list[PodState]:
        """loraflow's pods that are not terminated (for the orphan sweeper)."""
        ...

    def price_per_hour(self) -> float:
        """USD per hour of the machine a pod gets."""
        ...
