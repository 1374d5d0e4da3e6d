"""The product's numbers: how many images a LoRA takes, how long things may wait or run, what a
training may cost. Defaults of the settings of the same names come from here. Standard library
only: the workflow sandbox imports this module.
"""

from __future__ import annotations

__all__ = [
    "AGENT_IDLE_S",
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_TRAINING_S",
    "MIN_IMAGES",
    "PENDING_IMAGES_WAIT_S",
    "TRAINING_COST_CAP_USD",
    "UPLOADS_ALONE",
    "VALIDATION_IMAGES_NEEDED",
]

#: A LoRA trains on 3 to 10 character images (the spec).
MIN_IMAGES = 3
MAX_IMAGES = 10
#: One uploaded image, in bytes.
MAX_IMAGE_BYTES = 15 * 1024 * 1024
#: Phase 2 datasets: with this many uploads a job's LoRA trains on the user's images alone.
UPLOADS_ALONE = 5
#: A pending LoRA waits this long for its images, then fails with a reason.
PENDING_IMAGES_WAIT_S = 24 * 3600.0
#: A running training stops (cleanup included) when its pod has cost this much ...
TRAINING_COST_CAP_USD = 5.0
#: ... or run this long; the orphan sweeper and the pod's own deadline use the same age.
MAX_TRAINING_S = 3 * 3600.0
#: A pod whose agent hears nothing from its workflow this long removes itself.
AGENT_IDLE_S = 15 * 60.0
#: Of the validation images, this many must show the character for a LoRA to pass.
VALIDATION_IMAGES_NEEDED = 2
