"""Compute providers: where a training pod runs. Each one only creates (idempotently, by name),
describes, terminates, lists, and says its price per hour; the pod agent does the rest."""

from loraflow.compute.base import ComputeProvider, PodState, PodStatus
from loraflow.contracts.lora_training import PodHandle
from loraflow.errors import ProviderError

__all__ = ["ComputeProvider", "PodHandle", "PodState", "PodStatus", "ProviderError"]
